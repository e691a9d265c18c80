"""Datasets ("benchmarks"): one entry point from a `DatasetConfig` to train / val / test examples.

Sources: seeded synthetic generators, Fine-tune-CoT's released data, a local file, or a hub
dataset. Whatever the source, the validation split is carved from train with a seed (model
selection never looks at test), caps apply the same way, and sample_ids are stable and unique.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Optional

from skipthink.datasets import finetune_cot
from skipthink.datasets.base import SPLITS, DatasetError, Example, RecordedCompletion
from skipthink.datasets.file import load_file_examples, load_hub_examples
from skipthink.datasets.scoring import answer_type_for, extract_answer, grade, is_correct
from skipthink.datasets.synthetic import GENERATORS, generate_splits
from skipthink.config import DatasetConfig

__all__ = [
    "DatasetError",
    "Example",
    "RecordedCompletion",
    "answer_type_for",
    "extract_answer",
    "grade",
    "is_correct",
    "load_examples",
    "load_recorded_completions",
]


def _synthetic(cfg: DatasetConfig) -> tuple[list[Example], list[Example]]:
    generator = GENERATORS[cfg.name]
    train, test = generate_splits(cfg.name, generator.generate_one, cfg.n_train, cfg.n_test, cfg.seed, cfg.synthetic)
    answer_type = answer_type_for(cfg.name)

    def build(items, split):
        return [Example(cfg.name, split, f"{split}-{i}", g.question, g.answer, answer_type, dict(g.meta)) for i, g in enumerate(items)]

    return build(train, "train"), build(test, "test")


def _seeded_subset(examples: list[Example], k: int, salt: str) -> tuple[list[Example], list[Example]]:
    """(k examples drawn with a seed, the rest), both in their original order."""
    chosen = set(random.Random(salt).sample(range(len(examples)), k))
    return [e for i, e in enumerate(examples) if i in chosen], [e for i, e in enumerate(examples) if i not in chosen]


def _with_split(examples: list[Example], split: str) -> list[Example]:
    return [dataclasses.replace(e, split=split) for e in examples]


def _assign_unsplit(cfg: DatasetConfig, examples: list[Example]) -> tuple[list[Example], list[Example], list[Example]]:
    by_split = {s: [e for e in examples if e.split == s] for s in ("", *SPLITS)}
    unsplit = by_split[""]
    test_new, train_new = _seeded_subset(unsplit, round(len(unsplit) * cfg.test_fraction), f"{cfg.name}/{cfg.seed}/test")
    return by_split["train"] + _with_split(train_new, "train"), by_split["val"], by_split["test"] + _with_split(test_new, "test")


def _finish(cfg: DatasetConfig, train: list[Example], val: list[Example], test: list[Example]) -> list[Example]:
    if cfg.max_train is not None and len(train) > cfg.max_train:
        train, _ = _seeded_subset(train, cfg.max_train, f"{cfg.name}/{cfg.seed}/max_train")
    if not val and cfg.val_fraction > 0 and len(train) > 1:
        n_val = min(len(train) - 1, max(1, round(len(train) * cfg.val_fraction)))
        val, train = _seeded_subset(train, n_val, f"{cfg.name}/{cfg.seed}/val")
        val = _with_split(val, "val")
    if cfg.max_test is not None and len(test) > cfg.max_test:
        test, _ = _seeded_subset(test, cfg.max_test, f"{cfg.name}/{cfg.seed}/max_test")
    out = train + val + test
    ids = [e.sample_id for e in out]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise DatasetError(f"dataset {cfg.name!r}: sample_id {duplicate!r} appears twice")
    if not train or not test:
        raise DatasetError(f"dataset {cfg.name!r}: {len(train)} train and {len(test)} test examples; both splits need at least one")
    return out


def load_examples(cfg: DatasetConfig) -> list[Example]:
    """Every example of the configured dataset, train then val then test."""
    if cfg.source == "synthetic":
        train, test = _synthetic(cfg)
        return _finish(cfg, train, [], test)
    if cfg.source == "finetune_cot":
        splits = finetune_cot.load_split_examples(cfg.data_dir, cfg.name)
        return _finish(cfg, splits["train"], [], splits["test"])
    examples = load_file_examples(cfg) if cfg.source == "file" else load_hub_examples(cfg)
    return _finish(cfg, *_assign_unsplit(cfg, examples))


def load_recorded_completions(cfg: DatasetConfig, examples: Optional[list[Example]] = None) -> dict[str, list[RecordedCompletion]]:
    """Rationales the source already carries, per sample_id.

    Fine-tune-CoT: its recorded teacher completions (both steps of the two-step prompt).
    File / hub with a rationale field: those rationales. Synthetic: none.
    """
    if cfg.source == "finetune_cot":
        return finetune_cot.load_recorded_completions(cfg.data_dir, cfg.name)
    if cfg.source == "synthetic":
        return {}
    examples = load_examples(cfg) if examples is None else examples
    return {
        e.sample_id: [RecordedCompletion(e.sample_id, k, r) for k, r in enumerate(e.rationales)]
        for e in examples
        if e.rationales
    }
