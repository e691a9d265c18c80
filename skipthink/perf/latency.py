"""`skipthink bench latency`: batch-1 latency of a finished run's trained students, side by side.

The evaluate stage times each method on its own, one stage after another, on a few questions
(`evaluation.latency_samples`); on a shared machine the FT / STT ratio of those medians is as
much the neighbours' load as the method (RESULTS.md §3 calls it noise). Here every student is
loaded in one process and each question is decoded by each student in turn — the order rotated
per question so that no method always runs first — `repeats` times; a question's time for a
method is its fastest repeat (the least disturbed). The ratio is the baseline's total time over
the method's, on the same questions, with a bootstrap 95 % interval over the questions (it
covers which questions were timed; the fastest-of-repeats covers the machine). The token ratio
on the same questions is reported beside it: when every decode step costs the same, time
follows tokens, and the per-token cost says whether it does.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch

from skipthink.generation import generate

BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class Timed:
    """One question decoded by one student: fastest wall time over the repeats, tokens written."""

    seconds: float
    new_tokens: int


def time_side_by_side(students: Mapping[str, tuple], prompts: Mapping[str, Sequence[str]], max_new_tokens: int, repeats: int) -> dict[str, list[Timed]]:
    """method -> per-question timings. `students`: method -> (model, tokenizer); `prompts`:
    method -> its prompt for each question (STT's carries the skip marker), all of one length."""
    methods = list(students)
    lengths = {len(prompts[m]) for m in methods}
    if len(lengths) != 1 or not lengths.pop():
        raise ValueError("every method needs a prompt for each of the same (at least one) questions")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")

    def decode(method: str, prompt: str):
        model, tokenizer = students[method]
        return generate(model, tokenizer, [prompt], max_new_tokens=max_new_tokens, batch_size=1)[0]

    with torch.inference_mode():
        for m in methods:  # warm-up: first calls pay for allocations and kernel selection
            decode(m, prompts[m][0])
        best: dict[str, list[Timed]] = {m: [] for m in methods}
        for q in range(len(prompts[methods[0]])):
            order = methods[q % len(methods):] + methods[: q % len(methods)]
            runs = {m: [] for m in methods}
            for _ in range(repeats):
                for m in order:
                    runs[m].append(decode(m, prompts[m][q]))
            for m in methods:
                fastest = min(runs[m], key=lambda g: g.seconds)
                best[m].append(Timed(fastest.seconds, fastest.new_tokens))
    return best


def _ratio_of_sums(base: Sequence[float], other: Sequence[float]) -> float:
    return sum(base) / sum(other)


def bootstrap_ratio(base: Sequence[float], other: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of sum(base) / sum(other) over questions resampled with replacement."""
    rng = random.Random(seed)
    n = len(base)
    ratios = []
    for _ in range(resamples):
        idx = [rng.randrange(n) for _ in range(n)]
        ratios.append(_ratio_of_sums([base[i] for i in idx], [other[i] for i in idx]))
    ratios.sort()
    return ratios[int(0.025 * resamples)], ratios[min(resamples - 1, int(0.975 * resamples))]


def summarise(timings: Mapping[str, Sequence[Timed]], baseline: str = "ft") -> dict:
    """Per method: total and median seconds, tokens, ms per token; per non-baseline method: the
    baseline / method latency ratio with its interval, and the token ratio on the same questions."""
    if baseline not in timings:
        raise ValueError(f"the baseline {baseline!r} was not timed (timed: {', '.join(timings)})")
    methods = {}
    for m, ts in timings.items():
        seconds, tokens = [t.seconds for t in ts], [t.new_tokens for t in ts]
        methods[m] = {
            "seconds_total": round(sum(seconds), 4),
            "latency_median_s": round(statistics.median(seconds), 4),
            "mean_new_tokens": round(statistics.fmean(tokens), 2),
            "ms_per_token": round(1000 * sum(seconds) / max(1, sum(tokens)), 3),
        }
    base_s = [t.seconds for t in timings[baseline]]
    base_tok = [t.new_tokens for t in timings[baseline]]
    vs = {}
    for m, ts in timings.items():
        if m == baseline:
            continue
        s = [t.seconds for t in ts]
        low, high = bootstrap_ratio(base_s, s)
        vs[m] = {
            "latency_ratio": round(_ratio_of_sums(base_s, s), 3),
            "latency_ratio_ci95": [round(low, 3), round(high, 3)],
            "token_ratio": round(sum(base_tok) / max(1, sum(t.new_tokens for t in ts)), 3),
        }
    return {"methods": methods, f"vs_{baseline}": vs}
