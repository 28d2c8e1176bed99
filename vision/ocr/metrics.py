"""Accuracy measures shared by the benchmark and training: character error rate."""

from __future__ import annotations


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: insertions, deletions and substitutions to turn a into b."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def char_error_rate(pairs: list[tuple[str, str]]) -> float:
    """Total edits over total reference characters, for (read, truth) pairs."""
    chars = sum(len(truth) for _, truth in pairs)
    return sum(edit_distance(read, truth) for read, truth in pairs) / max(chars, 1)
