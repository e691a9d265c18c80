"""Coin flip (Kojima et al. 2022): who flips a heads-up coin; is it still heads up?

Real format: 'A coin is heads up. Whitney flips the coin. Erika does not flip the coin. …
Is the coin still heads up? Note that "flip" here means "reverse".' Answer "yes" / "no".
Difficulty: (people, flips) — more turns to track, then more state changes.
"""

from __future__ import annotations

import random
import re
from typing import Optional

from skipthink.datasets.synthetic import names
from skipthink.datasets.synthetic.common import Generated, draw
from skipthink.config import SyntheticOptions

_HEAD = "A coin is heads up."
_TAIL = ' Is the coin still heads up? Note that "flip" here means "reverse".'
_TURN = re.compile(r" ([^.]+?) (flips|does not flip) the coin\.")


def generate_one(rng: random.Random, options: SyntheticOptions) -> Generated:
    people = rng.sample(names.ALL, draw(rng, options.n_people))
    flips = [rng.random() < 0.5 for _ in people]
    turns = "".join(f" {p} flips the coin." if f else f" {p} does not flip the coin." for p, f in zip(people, flips))
    answer = "yes" if sum(flips) % 2 == 0 else "no"
    return Generated(_HEAD + turns + _TAIL, answer, {"people": people, "flips": flips})


def parse(question: str) -> Optional[dict]:
    """The people and their flips, read back from the question text (None if not this format)."""
    if not (question.startswith(_HEAD) and question.endswith(_TAIL)):
        return None
    body = question[len(_HEAD):-len(_TAIL)]
    turns = _TURN.findall(body)
    if not turns or "".join(f" {p} {v} the coin." for p, v in turns) != body:
        return None
    flips = [v == "flips" for _, v in turns]
    return {"people": [p for p, _ in turns], "flips": flips, "answer": "yes" if sum(flips) % 2 == 0 else "no"}


def difficulty(facts: dict) -> tuple[int, int]:
    return len(facts["people"]), sum(facts["flips"])
