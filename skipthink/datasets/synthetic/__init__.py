"""Seeded generators for four Fine-tune-CoT benchmarks, writing the real datasets' question format.

Each module has `generate_one(rng, options) -> Generated` (question, answer, meta with the
structured facts) and `parse(question) -> dict | None`, which reads the same facts back from the
text alone (the scripted teacher and the format tests rely on it), and
`difficulty(facts) -> tuple` — a sort key, larger is harder, defined in each module's docstring —
which `question_difficulty` reads from the text, so a curriculum needs no stored metadata.
"""

from __future__ import annotations

from types import ModuleType
from typing import Optional, Sequence

from skipthink.datasets.synthetic import coin_flip, last_letter_concatenation, multiarith, tracking_shuffled_objects
from skipthink.datasets.synthetic.common import Generated, generate_splits
from skipthink.config import DatasetConfig

GENERATORS: dict[str, ModuleType] = {
    "coin_flip": coin_flip,
    "last_letter_concatenation": last_letter_concatenation,
    "tracking_shuffled_objects": tracking_shuffled_objects,
    "multiarith": multiarith,
}


def question_difficulty(name: str, question: str) -> tuple[int, ...]:
    """The generator's difficulty of one question of dataset `name`, read from its text."""
    module = GENERATORS[name]
    facts = module.parse(question)
    if facts is None:
        raise ValueError(f"{name}: not a question in the generator's format: {question[:80]!r}")
    return module.difficulty(facts)


def curriculum_order(cfg: DatasetConfig, questions: Sequence[str]) -> Optional[list[tuple[int, ...]]]:
    """Per-question sort keys for training (easy first), or None when `cfg.curriculum` is none."""
    if cfg.curriculum == "none":
        return None
    return [question_difficulty(cfg.name, q) for q in questions]


__all__ = ["GENERATORS", "Generated", "curriculum_order", "generate_splits", "question_difficulty"]
