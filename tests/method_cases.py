"""How the shared test matrix builds each registered method tiny.

Every method in ``hf_zsl.METHODS`` must have an entry here; ``test_matrix`` fails otherwise, so a
new method cannot skip the matrix. ``fit`` puts a model into a trained state (changing every learned
tensor) so save / load equality is tested on non-trivial weights.
"""

from dataclasses import dataclass, field
from collections.abc import Callable


@dataclass
class MethodCase:
    hyperparameters: dict = field(default_factory=dict)
    fit: Callable | None = None


CASES: dict[str, MethodCase] = {
    "zeroshot": MethodCase(hyperparameters={"templates": ["a photo of a {}.", "art of the {}."]}),
}
