"""Last-letter concatenation (Kojima et al. 2022): join the last letter of each word.

Real format: 'Take the last letters of each words in "Whitney Erika Tj Benito" and concatenate
them.' Answer "yajo". The real file has 4 names per question and answers one letter per NAME,
so its 15 questions with a two-word name ("Jose Antonio") read as 5 words but answer 4 letters;
the text alone cannot say which, so generated questions use one-word names only.
Difficulty: (names, letters in all names) — more letters to find, then longer words to read.
"""

from __future__ import annotations

import random
import re
from typing import Optional

from skipthink.datasets.synthetic import names
from skipthink.datasets.synthetic.common import Generated, draw
from skipthink.config import SyntheticOptions

_ONE_WORD_NAMES = tuple(n for n in names.ALL if " " not in n)
_QUESTION = re.compile(r'Take the last letters of each words in "([^"]+)" and concatenate them\.')


def generate_one(rng: random.Random, options: SyntheticOptions) -> Generated:
    words = rng.sample(_ONE_WORD_NAMES, draw(rng, options.n_words))
    letters = [w[-1] for w in words]
    question = f'Take the last letters of each words in "{" ".join(words)}" and concatenate them.'
    return Generated(question, "".join(letters), {"words": words, "letters": letters})


def parse(question: str) -> Optional[dict]:
    """The words and their last letters, read back from the question text."""
    match = _QUESTION.fullmatch(question)
    if match is None:
        return None
    words = match.group(1).split(" ")
    letters = [w[-1] for w in words]
    return {"words": words, "letters": letters, "answer": "".join(letters)}


def difficulty(facts: dict) -> tuple[int, int]:
    return len(facts["words"]), sum(len(w) for w in facts["words"])
