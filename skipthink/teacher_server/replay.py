"""The replay teacher: answers with recorded real completions (Fine-tune-CoT's D_*.json).

A rationale prompt is matched to a recorded `reasoning_prompt` (exactly, else by its question
with whitespace normalised); choice i is completion index i. An answer prompt is matched by
its recorded prompt + rationale, whichever answer trigger follows. A question that was never
recorded is an error, never an invented answer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from skipthink.teacher.prompts import ANSWER_TRIGGER, question_from_prompt

# Kojima et al.'s dataset-specific trigger, used by some recorded MultiArith answer prompts.
ANSWER_TRIGGERS = (ANSWER_TRIGGER, " Therefore, the answer (arabic numerals) is")


class ReplayMiss(LookupError):
    """No recording for this prompt."""


class ReplayTooFew(ValueError):
    """Fewer recorded completions than the choices asked for."""


def _norm(text: str) -> str:
    return " ".join(text.split())


def find_completion_files(data_dir: Path) -> list[Path]:
    data_dir = Path(data_dir)
    files = sorted(data_dir.rglob("D_*.json")) if data_dir.is_dir() else []
    if not files:
        raise FileNotFoundError(f"replay: no Fine-tune-CoT completion files (D_*.json) under {data_dir}")
    return files


class ReplayTeacher:
    def __init__(self, data_dir: Path):
        self.by_prompt: dict[str, list[dict]] = {}
        self.by_question: dict[str, list[dict]] = {}
        self.answers: dict[str, str] = {}
        for path in find_completion_files(data_dir):
            for completions in json.loads(path.read_text())["data"].values():
                ordered = sorted(completions, key=lambda c: c["completion_index"])
                self.by_prompt.setdefault(ordered[0]["reasoning_prompt"], ordered)
                self.by_question.setdefault(_norm(ordered[0]["question"]), ordered)
                for c in ordered:
                    self.answers.setdefault(c["reasoning_prompt"] + c["reasoning_completion"], c["completion"])

    def _recorded(self, prompt: str) -> list[dict]:
        found = self.by_prompt.get(prompt)
        if found is None:
            question = question_from_prompt(prompt)
            found = self.by_question.get(_norm(question)) if question is not None else None
        if found is None:
            raise ReplayMiss("replay: no recorded completion for this question")
        return found

    def _answer(self, prompt: str) -> Optional[str]:
        for trigger in ANSWER_TRIGGERS:
            if prompt.endswith(trigger):
                found = self.answers.get(prompt[: -len(trigger)])
                if found is None:
                    raise ReplayMiss("replay: no recorded answer for this rationale")
                return found
        return None

    def complete(self, prompt: str, n: int, max_tokens: int, temperature: float) -> list[tuple[str, str]]:
        answer = self._answer(prompt)
        if answer is not None:
            return [(answer, "stop")] * n
        recorded = self._recorded(prompt)
        if n > len(recorded):
            raise ReplayTooFew(f"replay: {len(recorded)} recorded completions for this question, {n} asked for")
        return [(c["reasoning_completion"], c.get("reasoning_finish_reason") or "stop") for c in recorded[:n]]
