"""The shape every benchmark loader returns: plain examples with a split and an answer type."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Example:
    dataset: str
    split: str  # train | val | test
    sample_id: str  # stable within the dataset (Fine-tune-CoT sample_index for real data)
    question: str
    answer: str
    answer_type: str  # number | float | letter | yes_no | string
    meta: dict[str, Any] = field(default_factory=dict)
    # Rationales the source already carries (file rationale field, recorded completions).
    rationales: tuple[str, ...] = ()

    def to_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["rationales"] = list(self.rationales)
        return row


class DatasetError(ValueError):
    """Bad input data; the message names the file and the record."""


@dataclass(frozen=True)
class RecordedCompletion:
    """A teacher completion shipped with a dataset (Fine-tune-CoT's D_*.json)."""

    sample_id: str
    completion_index: int
    rationale: str
    finish_reason: Optional[str] = None
    # The second (answer-extraction) call of the two-step zero-shot-CoT prompt, kept for replay.
    answer_completion: Optional[str] = None
    reasoning_prompt: Optional[str] = None
    answer_prompt: Optional[str] = None
