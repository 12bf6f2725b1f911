"""Validation of candidate label lists given as strings."""

from collections.abc import Sequence


def check_candidate_labels(labels: Sequence[str]) -> list[str]:
    """Return ``labels`` as a list, or raise a clear error for an unusable label list.

    Raises:
        TypeError: if ``labels`` is a single string or holds non-strings.
        ValueError: if it is empty, holds an empty / blank label, or repeats a label.
    """
    if isinstance(labels, str) or not isinstance(labels, Sequence):
        raise TypeError(f"candidate_labels must be a list of strings, got {type(labels).__name__}: {labels!r}.")
    if not labels:
        raise ValueError("The list of candidate labels is empty: give at least one label.")
    first_seen: dict[str, int] = {}
    for position, label in enumerate(labels):
        if not isinstance(label, str):
            raise TypeError(f"Candidate label at position {position} is a {type(label).__name__}, not a string.")
        if not label.strip():
            raise ValueError(f"Candidate label at position {position} is empty: every label needs some text.")
        key = " ".join(label.lower().split())  # the CLIP tokenizer lower-cases and collapses whitespace
        if key in first_seen:
            raise ValueError(
                f"Candidate labels at positions {first_seen[key]} and {position} are the same text ({label!r}); "
                "remove the duplicate."
            )
        first_seen[key] = position
    return list(labels)
