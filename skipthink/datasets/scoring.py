"""Answer extraction and correctness, per answer type.

Follows Fine-tune-CoT's evaluator (itsnamgyu/reasoning-teacher, `src/evaluation/evaluator.py`)
exactly, so that scoring its recorded text-davinci-002 completions reproduces the published
teacher accuracies to two decimals:

- candidates are every answer-shaped token in the text (letters of the choice set, numbers with
  commas removed, yes/no words, or the whole text stripped of quotes/periods/whitespace for
  last-letter concatenation);
- with no prefix, the FIRST candidate is the prediction (the second-step answer completion);
  with a prefix (`-->`, `[answer]`, `Therefore, the answer is`), the first candidate after it,
  or the LAST candidate of the whole text when the prefix is missing;
- numbers compare as strings for integer datasets (MultiArith, GSM8K) and as floats within 1e-6
  for AddSub / SVAMP / SingleEq, whose gold answers look like "26.0".
"""

from __future__ import annotations

import re
from typing import Optional

from skipthink.datasets.base import DatasetError, Example

ANSWER_TYPES = ("number", "float", "letter", "yes_no", "string")

_ANSWER_TYPE_BY_DATASET = {
    "gsm8k": "number",
    "multiarith": "number",
    "addsub": "float",
    "svamp": "float",
    "single_eq": "float",
    "aqua": "letter",
    "commonsense_qa": "letter",
    "date_understanding": "letter",
    "tracking_shuffled_objects": "letter",
    "strategy_qa": "yes_no",
    "coin_flip": "yes_no",
    "last_letter_concatenation": "string",
}
# Fine-tune-CoT scans a fixed letter set per multiple-choice dataset (not the question's choices).
_CHOICE_LETTERS_BY_DATASET = {
    "aqua": "ABCDE",
    "commonsense_qa": "ABCDE",
    "date_understanding": "ABCDEF",
    "tracking_shuffled_objects": "ABC",
}
DEFAULT_CHOICE_LETTERS = "ABCDE"
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_YES_NO_SEPARATORS = re.compile(r"\"|'|\n|\.|\s|:|,")
_STRING_NOISE = re.compile(r"\"|'|\n|\.|\s")
_CHOICE_MARK = re.compile(r"\(([A-Z])\)")


def answer_type_for(dataset: str) -> str:
    """The answer type of a known dataset (Fine-tune-CoT's twelve, which include the synthetic four)."""
    try:
        return _ANSWER_TYPE_BY_DATASET[dataset]
    except KeyError:
        known = ", ".join(sorted(_ANSWER_TYPE_BY_DATASET))
        raise DatasetError(f"dataset {dataset!r}: unknown dataset, no answer type; known: {known}") from None


def choice_letters(dataset: str, question: Optional[str] = None) -> str:
    """Letters scanned for a multiple-choice answer.

    Known datasets use Fine-tune-CoT's fixed set; otherwise the `(A) … (B) …` marks of the
    question decide. Synthetic generators store their own set in `meta["choice_letters"]`
    (a tracking question with 5 objects offers A-E), which `grade` prefers.
    """
    if dataset in _CHOICE_LETTERS_BY_DATASET:
        return _CHOICE_LETTERS_BY_DATASET[dataset]
    marks = _CHOICE_MARK.findall(question.rsplit("Answer choices:", 1)[-1]) if question else []
    return "".join(sorted(set(marks))) or DEFAULT_CHOICE_LETTERS


def answer_candidates(text: str, answer_type: str, letters: Optional[str] = None) -> list[str]:
    """Every substring of `text` shaped like an answer of this type, in order."""
    if answer_type == "letter":
        return re.findall(f"[{re.escape(letters or DEFAULT_CHOICE_LETTERS)}]", text)
    if answer_type in ("number", "float"):
        return _NUMBER.findall(text.replace(",", ""))
    if answer_type == "yes_no":
        words = _YES_NO_SEPARATORS.sub(" ", text.lower()).split(" ")
        return [w for w in words if w in ("yes", "no")]
    if answer_type == "string":
        return [_STRING_NOISE.sub("", text)]
    raise ValueError(f"unknown answer type {answer_type!r}; choose one of {', '.join(ANSWER_TYPES)}")


def extract_answer(text: str, answer_type: str, prefix: Optional[str] = None, letters: Optional[str] = None) -> Optional[str]:
    """The predicted answer in `text`, or None when it holds no candidate.

    `prefix=None`: the first candidate of the whole text. Otherwise the first candidate after
    the first occurrence of `prefix`, or the last candidate of the whole text without it.
    """
    if prefix is None:
        candidates, first = answer_candidates(text, answer_type, letters), True
    else:
        at = text.find(prefix)
        if at == -1:
            candidates, first = answer_candidates(text, answer_type, letters), False
        else:
            candidates, first = answer_candidates(text[at + len(prefix):], answer_type, letters), True
    if not candidates:
        return None
    return candidates[0] if first else candidates[-1]


def normalize_gold(gold: str, answer_type: str) -> str:
    """Gold answers as the evaluator compares them (commas dropped, yes/no lower-cased)."""
    gold = gold.strip()
    if answer_type in ("number", "float"):
        return gold.replace(",", "")
    if answer_type == "yes_no":
        return gold.lower()
    return gold


def is_correct(predicted: Optional[str], gold: str, answer_type: str) -> bool:
    """Whether an extracted prediction matches the gold answer."""
    if predicted is None:
        return False
    gold = normalize_gold(gold, answer_type)
    if answer_type == "float":
        try:
            return abs(float(predicted) - float(gold)) <= 1e-6
        except ValueError:
            return False
    return predicted == gold


def grade(text: str, example: Example, prefix: Optional[str] = None) -> tuple[Optional[str], bool]:
    """(predicted answer, correct) of a model output for one example."""
    letters = example.meta.get("choice_letters") if example.answer_type == "letter" else None
    predicted = extract_answer(text, example.answer_type, prefix=prefix, letters=letters)
    return predicted, is_correct(predicted, example.answer, example.answer_type)
