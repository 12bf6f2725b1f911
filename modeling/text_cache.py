"""A small LRU of label-set text features, so label text is encoded once per label set."""

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable

import torch


def parameter_state_key(parameters: Iterable[torch.nn.Parameter]) -> tuple:
    """A cheap key that changes whenever any of ``parameters`` is moved or updated in place.

    ``data_ptr`` changes on ``.to()`` / reloading; ``_version`` is bumped by every in-place update
    (optimizer steps, ``load_state_dict``, ``copy_``).
    """
    return tuple((p.data_ptr(), p._version, p.dtype) for p in parameters)


class TextFeatureCache:
    """Least-recently-used map from (label ids, learned-state key) to label features.

    Entries are only stored while autograd is off (inference), so training always recomputes
    features through the graph.
    """

    def __init__(self, max_entries: int = 8):
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, torch.Tensor] = OrderedDict()
        self.misses = 0

    def get_or_compute(self, key: Hashable, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        if torch.is_grad_enabled():
            return compute()
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        self.misses += 1
        value = compute()
        self._entries[key] = value
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        self._entries.clear()
