"""The one place stored rows become method objects: examples, and training items with their
chunkings and skip samples."""

from __future__ import annotations

from typing import Optional, Sequence

from skipthink.datasets.base import Example
from skipthink.items import TrainItem, make_item
from storage import Database, chunkings, examples

Splits = dict[str, list[TrainItem]]


def read_examples(db: Database, data_fp: str, splits: Sequence[str] = ("train", "val", "test")) -> list[Example]:
    return [
        Example(
            dataset=r["dataset"],
            split=r["split"],
            sample_id=r["sample_id"],
            question=r["question"],
            answer=r["answer"],
            answer_type=r["answer_type"],
            meta=r["meta"],
            rationales=tuple(r["rationales"]),
        )
        for r in examples.read_examples(db, data_fp, splits)
    ]


def build_items(rows: list[dict], num_chunks: int) -> tuple[Splits, list[dict]]:
    """Items per split (train, val), and the rows dropped because M chunks cannot be formed."""
    items: Splits = {"train": [], "val": []}
    dropped = []
    for r in rows:
        try:
            items[r["split"]].append(make_item(r["sample_id"], r["completion_index"], r["question"], r["answer"], r["rationale"], num_chunks))
        except ValueError as e:
            dropped.append({"sample_id": r["sample_id"], "completion_index": r["completion_index"], "reason": str(e)})
    return items, dropped


def chunked_items(db: Database, data_fp: str, teacher_fp: str, num_chunks: int, boundaries: dict) -> Splits:
    """Train and val items with the given chunking (items without one are left out)."""
    items, _ = build_items(examples.kept_rationales(db, teacher_fp, data_fp), num_chunks)
    return {split: [it.with_boundaries(boundaries[it.key]) for it in its if it.key in boundaries] for split, its in items.items()}


def initial_items(db: Database, data_fp: str, teacher_fp: str, chunk_fp: str, num_chunks: int) -> Splits:
    return chunked_items(db, data_fp, teacher_fp, num_chunks, chunkings.initial_boundaries(db, chunk_fp))


def final_items(db: Database, data_fp: str, teacher_fp: str, train_fp: str, num_chunks: int) -> Splits:
    """Items with the chunking training run `train_fp` ended with (CWT-SBC's selected epoch)."""
    return chunked_items(db, data_fp, teacher_fp, num_chunks, chunkings.final_boundaries(db, train_fp))


def with_skip_alternatives(items: Splits, masks: Optional[dict], num_chunks: int) -> Splits:
    """Attach each item's skip sample: the stored mask (items that passed the baseline check),
    or, with `masks=None`, every chunk skipped (SkipALL)."""
    out: Splits = {}
    for split, its in items.items():
        if masks is None:
            out[split] = [it.with_skip_alternative([True] * num_chunks) for it in its]
        else:
            out[split] = [it.with_skip_alternative(masks[it.key]) if it.key in masks else it for it in its]
    return out
