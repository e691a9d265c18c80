"""What every synthetic generator returns, and the seeded driver that makes disjoint splits."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable

from skipthink.datasets.base import DatasetError
from skipthink.config import SyntheticOptions


@dataclass(frozen=True)
class Generated:
    question: str
    answer: str
    meta: dict[str, Any] = field(default_factory=dict)  # the structured facts behind the text


GenerateOne = Callable[[random.Random, SyntheticOptions], Generated]


def draw(rng: random.Random, knob: int | tuple[int, int]) -> int:
    """A knob's value for one question: the number itself, or a uniform draw from [min, max].

    A plain number draws nothing, so the default knobs keep the generators' random streams (and
    so every seeded dataset) exactly as they were.
    """
    return knob if isinstance(knob, int) else rng.randint(*knob)


def _draw_unique(generate_one: GenerateOne, rng: random.Random, options: SyntheticOptions, n: int, exclude: set[str], what: str) -> list[Generated]:
    out: list[Generated] = []
    seen = set(exclude)
    attempts, budget = 0, 50 * n + 1000
    while len(out) < n:
        attempts += 1
        if attempts > budget:
            raise DatasetError(f"synthetic {what}: only {len(out)} distinct questions after {budget} draws; ask for fewer examples")
        item = generate_one(rng, options)
        if item.question not in seen:
            seen.add(item.question)
            out.append(item)
    return out


def generate_splits(name: str, generate_one: GenerateOne, n_train: int, n_test: int, seed: int, options: SyntheticOptions) -> tuple[list[Generated], list[Generated]]:
    """Distinct train and test questions, disjoint from each other.

    Test is drawn first from its own seeded stream, so the test set does not change when only
    n_train changes; train then skips every test question.
    """
    test = _draw_unique(generate_one, random.Random(f"{name}/{seed}/test"), options, n_test, set(), f"{name} test")
    train = _draw_unique(generate_one, random.Random(f"{name}/{seed}/train"), options, n_train, {g.question for g in test}, f"{name} train")
    return train, test
