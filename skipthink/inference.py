"""Answering test questions with a trained student, per method.

Each method differs only in its prompt and where its answer sits in the output (formats.py):
answer-only and FT read `{q} ###` (FT writes `… --> a`); CWT writes `[1] … [M] … [answer] a`
from the same prompt; STT and SkipALL are prompted `[skip] {q} ###`. Scoring is Fine-tune-CoT's
evaluator (`datasets.scoring`), given the method's answer prefix.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Optional, Sequence

from skipthink.datasets.base import Example
from skipthink.datasets.scoring import extract_answer, is_correct
from skipthink.config import EvaluationConfig
from skipthink.formats import question_prompt
from skipthink.generation import generate
from skipthink.methods import method as method_spec

PROGRESS_EVERY_BATCHES = 4


@dataclass(frozen=True)
class Prediction:
    sample_id: str
    output: str
    predicted: Optional[str]
    gold: str
    correct: bool
    new_tokens: int
    latency_s: float  # time until this sequence finished within its batch

    def to_row(self) -> dict:
        return asdict(self)


def method_prompt(method: str, question: str) -> str:
    return question_prompt(question, skip=method_spec(method).skip_prompted)


def score_output(method: str, output: str, example: Example, answer_type: Optional[str] = None) -> tuple[Optional[str], bool]:
    """(predicted, correct) for one output; `answer_type` defaults to the example's."""
    answer_type = answer_type or example.answer_type
    letters = example.meta.get("choice_letters") if answer_type == "letter" else None
    predicted = extract_answer(output, answer_type, prefix=method_spec(method).answer_prefix, letters=letters)
    return predicted, is_correct(predicted, example.answer, answer_type)


def predict(
    model,
    tokenizer,
    method: str,
    examples: Sequence[Example],
    answer_type: Optional[str],
    cfg: EvaluationConfig,
    batch_size: Optional[int] = None,
    progress: Optional[Callable[[int, int], None]] = None,
) -> list[Prediction]:
    """Greedy answers for `examples` (in order), decoded `batch_size` (default cfg.batch_size) at a time.

    `progress(done, total)` is called after every group of a few batches (groups keep the
    length sorting inside `generate` effective).
    """
    prompts = [method_prompt(method, ex.question) for ex in examples]
    batch_size = batch_size or cfg.batch_size
    group = batch_size * PROGRESS_EVERY_BATCHES
    outs = []
    for start in range(0, len(prompts), group):
        outs += generate(model, tokenizer, prompts[start : start + group], max_new_tokens=cfg.max_new_tokens, batch_size=batch_size)
        if progress is not None:
            progress(len(outs), len(prompts))
    predictions = []
    for ex, out in zip(examples, outs):
        predicted, correct = score_output(method, out.text, ex, answer_type)
        predictions.append(Prediction(ex.sample_id, out.text, predicted, ex.answer, correct, out.new_tokens, out.seconds))
    return predictions
