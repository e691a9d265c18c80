"""The unit of training data: one teacher rationale of one example, already split into steps."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

from skipthink.text import average_boundaries, chunks_from_boundaries, ensure_min_steps, split_steps


@dataclass(frozen=True)
class TrainItem:
    sample_id: str
    completion_index: int
    question: str
    answer: str
    rationale: str
    steps: tuple[str, ...]
    # Chunk starts (excluding 0), len M-1; None = average chunking of `steps`.
    boundaries: Optional[tuple[int, ...]] = None
    # Skip-thinking samples: True where chunk j is written `[j] [thought]`; None = a plain CWT sample.
    skip_mask: Optional[tuple[bool, ...]] = None
    # STT / SkipALL: the mask of this item's skip sample, which an epoch trains instead of the
    # plain sample for a `skip.mix` share of items; None = the item has no skip sample.
    skip_alternative: Optional[tuple[bool, ...]] = None

    @property
    def key(self) -> tuple[str, int]:
        return (self.sample_id, self.completion_index)

    def chunk_boundaries(self, num_chunks: int) -> tuple[int, ...]:
        return self.boundaries if self.boundaries is not None else tuple(average_boundaries(len(self.steps), num_chunks))

    def chunks(self, num_chunks: int) -> list[str]:
        return chunks_from_boundaries(list(self.steps), list(self.chunk_boundaries(num_chunks)))

    def with_boundaries(self, boundaries) -> "TrainItem":
        return replace(self, boundaries=tuple(boundaries))

    def with_skip_mask(self, mask) -> "TrainItem":
        return replace(self, skip_mask=tuple(bool(m) for m in mask))

    def with_skip_alternative(self, mask) -> "TrainItem":
        return replace(self, skip_alternative=tuple(bool(m) for m in mask))

    def skip_sample(self) -> "TrainItem":
        """The skip sample this item trains in the epochs that draw it."""
        if self.skip_alternative is None:
            raise ValueError(f"item {self.key} has no skip sample")
        return replace(self, skip_mask=self.skip_alternative)


def make_item(sample_id: str, completion_index: int, question: str, answer: str, rationale: str, num_chunks: int) -> TrainItem:
    """Split a rationale into steps, applying the S < M rule; raises ValueError if impossible."""
    steps = ensure_min_steps(split_steps(rationale), num_chunks)
    return TrainItem(sample_id, completion_index, question, answer, rationale, tuple(steps))
