"""Grading rationales a user brings (`teacher.source: dataset`) by their final statement.

Another teacher's rationales rarely say "Therefore, the answer is X": they end "… so all
together we get: abcd", "The final result is 12." or "Hence (B).". The dataset's answer field
is the gold, so the question is only whether the rationale agrees with it: a rationale is
consistent when its final statement (the last sentence holding an answer of the right type)
contains the gold answer, by the answer type's comparison. Yes/no is the exception: both words
are common in one sentence ("no, so the answer is yes"), so the last one counts. A choice may
also be named by its text ("Bob has the white ball" for "(B) white ball").
"""

from __future__ import annotations

import re
from typing import Optional

from skipthink.datasets.base import Example
from skipthink.datasets.scoring import answer_candidates, choice_letters, is_correct, normalize_gold

# Sentence ends: ., ! or ? before whitespace (so 12.5 stays whole), and line breaks.
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[^\W_]+(?:['-][^\W_]+)*")


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_BREAK.split(text.strip()) if any(ch.isalnum() for ch in s)]


def _options(question: str, letters: str) -> list[tuple[str, str]]:
    """[(letter, option text)] of the question's "(A) … (B) …" choices."""
    parts = re.split(r"\(([A-Z])\)", question.rsplit("Answer choices:", 1)[-1])
    pairs = [(parts[i], parts[i + 1].strip(" ,.;\n\t").lower()) for i in range(1, len(parts) - 1, 2)]
    return [(letter, text) for letter, text in pairs if letter in letters and len(text) > 1]


def _letter_candidates(sentence: str, letters: str, question: str) -> list[str]:
    marked = re.findall(rf"\(([{re.escape(letters)}])\)", sentence)
    found = marked or re.findall(rf"(?<![A-Za-z])([{re.escape(letters)}])(?![A-Za-z])", sentence)
    lowered = sentence.lower()
    named = [letter for letter, text in _options(question, letters) if re.search(rf"(?<!\w){re.escape(text)}(?!\w)", lowered)]
    return found + [letter for letter in named if letter not in found]


def _candidates(sentence: str, example: Example) -> list[str]:
    kind = example.answer_type
    if kind == "letter":
        letters = example.meta.get("choice_letters") or choice_letters(example.dataset, example.question)
        return _letter_candidates(sentence, letters, example.question)
    if kind == "string":
        return _WORD.findall(sentence)
    return answer_candidates(sentence, kind)


def final_statement(text: str, example: Example) -> str:
    """The last sentence of `text` that holds an answer-shaped candidate ('' when none does)."""
    for sentence in reversed(_sentences(text)):
        if _candidates(sentence, example):
            return sentence
    return ""


def grade_final_statement(rationale: str, example: Example) -> tuple[Optional[str], bool]:
    """(answer read from the final statement, whether it agrees with the gold answer)."""
    sentence = final_statement(rationale, example)
    candidates = _candidates(sentence, example)
    if not candidates:
        return None, False
    kind = example.answer_type
    if kind == "yes_no":
        predicted = candidates[-1]
        return predicted, is_correct(predicted, example.answer, kind)
    gold = normalize_gold(example.answer, kind)
    if kind == "letter":
        gold = gold.strip("() ")
    if kind == "string":
        # The gold may be several words ("New York"): match it as a whole phrase.
        if re.search(rf"(?<!\w){re.escape(gold)}(?!\w)", sentence.replace('"', " ").replace("'", " ")):
            return gold, True
        return candidates[-1], False
    match = next((c for c in candidates if is_correct(c, gold, kind)), None)
    return (match, True) if match is not None else (candidates[-1], False)
