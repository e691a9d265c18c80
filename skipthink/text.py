"""Rationale text -> steps -> chunks. Pure string work, no tokenizer.

A step is a sentence: break after `.`/`!`/`?` followed by whitespace, and at newlines; empty
pieces are dropped. A truncated rationale ends mid-sentence and that last piece is still a
step. Chunk boundaries are the step indices where chunks 2..M start.
"""

from __future__ import annotations

import re

_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n+")


def split_steps(rationale: str) -> list[str]:
    return [p.strip() for p in _SENTENCE_BREAK.split(rationale) if p and p.strip()]


def _split_longest(steps: list[str]) -> list[str] | None:
    """Split the step with the most words at its middle word boundary; None if impossible."""
    order = sorted(range(len(steps)), key=lambda i: -len(steps[i].split()))
    for i in order:
        words = steps[i].split()
        if len(words) >= 2:
            mid = len(words) // 2
            return steps[:i] + [" ".join(words[:mid]), " ".join(words[mid:])] + steps[i + 1 :]
    return None


def ensure_min_steps(steps: list[str], num_chunks: int) -> list[str]:
    """If S < M, split the longest steps at word boundaries until S = M (docs/DESIGN.md §1).

    Raises ValueError when the rationale has fewer than M words: M non-empty chunks cannot
    be formed, and the caller drops (and counts) that rationale.
    """
    steps = [s for s in steps if s]
    while len(steps) < num_chunks:
        split = _split_longest(steps)
        if split is None:
            raise ValueError(f"rationale has {sum(len(s.split()) for s in steps)} words; cannot form {num_chunks} non-empty chunks")
        steps = split
    return steps


def average_boundaries(num_steps: int, num_chunks: int) -> list[int]:
    """AC: chunk starts (excluding 0) for M chunks of ceil/floor(S/M) consecutive steps."""
    if num_steps < num_chunks:
        raise ValueError(f"{num_steps} steps cannot form {num_chunks} chunks")
    base, extra = divmod(num_steps, num_chunks)
    starts, pos = [], 0
    for j in range(num_chunks - 1):
        pos += base + (1 if j < extra else 0)
        starts.append(pos)
    return starts


def validate_boundaries(boundaries: list[int], num_steps: int, num_chunks: int) -> None:
    if len(boundaries) != num_chunks - 1:
        raise ValueError(f"expected {num_chunks - 1} boundaries, got {len(boundaries)}")
    prev = 0
    for b in boundaries:
        if not prev < b < num_steps:
            raise ValueError(f"boundaries {boundaries} leave an empty chunk over {num_steps} steps")
        prev = b


def chunks_from_boundaries(steps: list[str], boundaries: list[int]) -> list[str]:
    """Join the steps of each chunk with single spaces."""
    validate_boundaries(boundaries, len(steps), len(boundaries) + 1)
    edges = [0, *boundaries, len(steps)]
    return [" ".join(steps[a:b]) for a, b in zip(edges[:-1], edges[1:])]
