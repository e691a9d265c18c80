"""Step-level reading of written rationales: which intermediate steps a student (or the teacher)
gets right, and how many chunks an output skipped.

Accuracy says only whether the final answer is right; these say where a chain goes wrong.
Checkers per dataset (others get the skip counts only):
- last letter: every name with its letter — the real teacher's `The last letter of "Elon" is "n".`
  (or `… of the first word is "n"`, or `Elon: n`), the scripted styles' `"Elon" ends with "n"` and
  `Elon: the last letter is "n".` — is a step. A step is *right* when the letter is the last
  letter of the name it states (over steps that state one), *on target* when it is the gold
  answer's letter at that position; the chain *joins to gold* when the stated letters, in order,
  are the gold answer (a wrong final answer after a chain that joins to gold is a failure to
  concatenate, not to find the letters).
- MultiArith: every `a op b = c` is a step, right when the arithmetic holds; the chain joins to
  gold when its last step's result is the gold answer.
- coin flip: every turn (someone flips or does not flip the coin, and the side it then shows) is a
  step, right when the side follows from the side before it (the coin starts heads up) and the
  action the turn states (after a skipped chunk the side before is unknown: not checked); the chain joins to gold when its last side answers the question (heads
  up = "yes"). Whether the stated action is the question's needs the question: a chain of right
  steps that does not join to gold miscopied an action.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Sequence

from skipthink.formats import THOUGHT
from skipthink.stats import mean_interval

# Each pattern captures (name, letter); a step that states its letter by position ("the first
# word") has no name, so its letter can be checked against the gold answer but not against a name.
_NAME_LETTER = [
    re.compile(r'"([^"\s]+)"\s+ends with\s+"([^"])"'),
    re.compile(r'last letter of\s+"([^"\s]+)"\s+is\s+"([^"])"'),
    re.compile(r'\b([A-Za-z]+): the last letter is\s+"([^"])"'),
    re.compile(r'^\s*([A-Za-z]+):\s*"?([A-Za-z])"?\s*$', re.MULTILINE),
    re.compile(r'last letter of the \w+ (?:word|name) is\s+"()([^"])"'),
]
_NUMBER = r"-?\d+(?:,\d{3})*(?:\.\d+)?"
_ARITHMETIC = re.compile(rf"({_NUMBER})\s*([-+*/x×÷])\s*({_NUMBER})\s*=\s*\$?({_NUMBER})")


@dataclass(frozen=True)
class StepCheck:
    """One output's steps: how many, how many right and on target, and whether the chain joins to gold."""

    steps: int
    named: int  # steps whose name is stated, so that `right` can be checked
    right: int
    on_target: int
    joins_gold: bool


def _last_letter_steps(text: str, gold: str) -> StepCheck:
    found = sorted((m.start(), m.group(1), m.group(2)) for pattern in _NAME_LETTER for m in pattern.finditer(text))
    pairs = [(name, letter) for _, name, letter in found]
    letters = [letter for _, letter in pairs]
    target = gold.strip().lower()
    right = sum(bool(name) and name[-1].lower() == letter.lower() for name, letter in pairs)
    on_target = sum(i < len(target) and letter.lower() == target[i] for i, letter in enumerate(letters))
    named = sum(bool(name) for name, _ in pairs)
    return StepCheck(len(pairs), named, right, on_target, bool(pairs) and "".join(letters).lower() == target)


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _apply(op: str, x: float, y: float) -> Optional[float]:
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op in "*x×":
        return x * y
    return x / y if y else None


def _arithmetic_steps(text: str, gold: str) -> StepCheck:
    steps = [(m.group(2), _number(m.group(1)), _number(m.group(3)), _number(m.group(4))) for m in _ARITHMETIC.finditer(text)]
    right = 0
    for op, x, y, stated in steps:
        value = _apply(op, x, y)
        right += value is not None and abs(value - stated) < 1e-6
    try:
        joins = bool(steps) and abs(steps[-1][3] - _number(gold.strip())) < 1e-6
    except ValueError:  # a non-numeric gold answer: no chain can join to it
        joins = False
    return StepCheck(len(steps), len(steps), right, right, joins)


# A turn is an action and the first side named after it, before the next action or the final
# "So …" (chunked outputs put every chunk on one line, so turns are not lines).
_COIN_ACTION = re.compile(r"\b(does not flip|doesn't flip|flips)\b")
_COIN_SIDE = re.compile(r"\b(heads|tails)\b")
_COIN_STOP = re.compile(r"\bSo\b|\[answer\]|-->")
_COIN_START = re.compile(r"\bstarts\s+(heads|tails)\b")


def _coin_flip_steps(text: str, gold: str) -> StepCheck:
    start = _COIN_START.search(text)
    side: Optional[str] = start.group(1) if start else "heads"
    actions = list(_COIN_ACTION.finditer(text))
    steps = checked = right = 0
    last = None
    for i, action in enumerate(actions):
        before = text[actions[i - 1].end() if i else 0:action.start()]
        if THOUGHT in before:  # a skipped chunk may have flipped the coin: the next side cannot be checked
            side = None
        tail = text[action.end():actions[i + 1].start() if i + 1 < len(actions) else len(text)]
        stop = _COIN_STOP.search(tail)
        stated = _COIN_SIDE.search(tail[:stop.start()] if stop else tail)
        if stated is None:  # an action without its side (the real teacher lists them, then counts)
            continue
        steps += 1
        if side is not None:
            expected = side if action.group(1) != "flips" else ("tails" if side == "heads" else "heads")
            checked += 1
            right += stated.group(1) == expected
        side = last = stated.group(1)  # the next step is checked against what this one said
    joins = last is not None and (last == "heads") == (gold.strip().lower() == "yes")
    return StepCheck(steps, checked, right, right, joins)


CHECKERS = {"last_letter_concatenation": _last_letter_steps, "multiarith": _arithmetic_steps, "coin_flip": _coin_flip_steps}


def check_steps(dataset: str, text: str, gold: str) -> Optional[StepCheck]:
    """The steps of one output of `dataset`, or None when no checker reads that task."""
    checker = CHECKERS.get(dataset)
    return None if checker is None else checker(text, gold)


def skipped_chunks(text: str) -> int:
    """How many `[thought]` placeholders an output wrote: the chunks it skipped."""
    return text.count(THOUGHT)


def _share(numerator: float, denominator: float) -> Optional[float]:
    return None if not denominator else round(100.0 * numerator / denominator, 2)


def read_outputs(dataset: str, outputs: Iterable[Mapping]) -> dict:
    """Per group of outputs (rows with `output`, `gold`, `correct`): the final-answer accuracy, the
    share that skipped at least one chunk, the mean chunks skipped and, where a checker reads the
    task, the step figures (percent of steps right / on target, of outputs whose chain joins to gold)."""
    rows = list(outputs)
    if not rows:
        raise ValueError(f"no outputs to read for {dataset}")
    skips = [skipped_chunks(r["output"]) for r in rows]
    out = {
        "n": len(rows),
        "accuracy": _share(sum(bool(r["correct"]) for r in rows), len(rows)),
        "skipping_share": _share(sum(s > 0 for s in skips), len(rows)),
        "mean_skipped_chunks": round(statistics.fmean(skips), 3),
    }
    checks = [check_steps(dataset, r["output"], r["gold"]) for r in rows]
    if checks[0] is None:
        return out
    steps = sum(c.steps for c in checks)
    if not steps:  # e.g. answer-only: no chain to read
        return dict(out, steps=0)
    out.update({
        "steps": steps,
        "mean_steps": round(steps / len(rows), 3),
        "steps_right": _share(sum(c.right for c in checks), sum(c.named for c in checks)),
        "steps_on_target": _share(sum(c.on_target for c in checks), steps),
        "joins_gold": _share(sum(c.joins_gold for c in checks), len(rows)),
        # Outputs whose stated steps lead to the gold answer but whose final answer is wrong.
        "joins_gold_answer_wrong": _share(sum(c.joins_gold and not r["correct"] for c, r in zip(checks, rows)), len(rows)),
    })
    return out


FIGURES = ("accuracy", "skipping_share", "mean_skipped_chunks", "steps_right", "steps_on_target", "joins_gold", "joins_gold_answer_wrong")


def _seed(run_name: str) -> Optional[int]:
    m = re.search(r"seed(\d+)$", run_name or "")
    return int(m.group(1)) if m else None


def step_table(rows: Sequence[Mapping]) -> dict:
    """Rows of written outputs (run_name, dataset, group, test_set, output, gold, correct), where
    `group` is a method for student outputs or `teacher kept` / `teacher rejected`, become
    {runs: [one row per (run, dataset, test set, group)], summary: {dataset: {test_set: {group:
    {FIGURE: {mean, ci95, runs}}}}}} — the summary is the mean over runs with a 95 % t-interval."""
    grouped: dict = {}
    for r in rows:
        grouped.setdefault((r["run_name"], r["dataset"], r["test_set"], r["group"]), []).append(r)
    per_run = []
    for (run, dataset, test_set, group), outputs in sorted(grouped.items()):
        per_run.append({"run": run, "seed": _seed(run), "dataset": dataset, "test_set": test_set, "group": group, **read_outputs(dataset, outputs)})
    summary: dict = {}
    for key in sorted({(r["dataset"], r["test_set"], r["group"]) for r in per_run}):
        runs = [r for r in per_run if (r["dataset"], r["test_set"], r["group"]) == key]
        figures = {}
        for name in FIGURES:
            values = [r[name] for r in runs if r.get(name) is not None]
            if values:
                iv = mean_interval(values)
                figures[name] = {"mean": round(iv.estimate, 2), "ci95": None if iv.half_width is None else round(iv.half_width, 2), "runs": len(values)}
        dataset, test_set, group = key
        summary.setdefault(dataset, {}).setdefault(test_set, {})[group] = figures
    return {"runs": per_run, "summary": summary}
