"""Test-set evaluation of one trained method: accuracy, generated tokens, latency, throughput.

Accuracy and mean generated tokens come from one batched greedy pass over the test examples.
Speed is measured separately, after a warm-up, because the batched pass mixes prompts of all
lengths: latency is the median wall-clock per question decoded alone (batch 1) over a fixed
subset (the first `latency_samples` examples, so every method is timed on the same questions);
throughput is questions per second for one batch of `throughput_batch` questions (the
examples repeated cyclically when there are fewer).

STT's claim is a speedup, so `method_summary` turns per-method metrics into the ratios the
paper reports: FT / method, in generated tokens and in batch-1 latency (> 1 means faster than FT).
"""

from __future__ import annotations

import itertools
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Sequence

from skipthink.datasets.base import Example
from skipthink.config import METHODS, EvaluationConfig
from skipthink.generation import generate
from skipthink.inference import Prediction, method_prompt, predict

WARMUP_QUESTIONS = 2


@dataclass(frozen=True)
class Evaluation:
    predictions: list[Prediction]
    # n, accuracy (percent), mean_new_tokens, latency_median_s, throughput_qps, plus how speed
    # was measured: latency_questions, throughput_batch (the `metrics.extra` column).
    metrics: dict


def _timed_batch(model, tokenizer, prompts: list[str], max_new_tokens: int) -> float:
    start = time.perf_counter()
    generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=len(prompts))
    return time.perf_counter() - start


def evaluate(
    model,
    tokenizer,
    method: str,
    examples: Sequence[Example],
    cfg: EvaluationConfig,
    answer_type: Optional[str] = None,
    progress: Optional[Callable[[int, int], None]] = None,
) -> Evaluation:
    """Predict every example, then time batch-1 latency and fixed-batch throughput."""
    if not examples:
        raise ValueError("evaluate needs at least one example")
    prompts = [method_prompt(method, ex.question) for ex in examples]
    # Warm-up: first calls pay for allocations and kernel selection.
    generate(model, tokenizer, prompts[:WARMUP_QUESTIONS], max_new_tokens=cfg.max_new_tokens, batch_size=1)

    predictions = predict(model, tokenizer, method, examples, answer_type, cfg, progress=progress)

    timed = prompts[: cfg.latency_samples]
    latencies = [o.seconds for o in generate(model, tokenizer, timed, max_new_tokens=cfg.max_new_tokens, batch_size=1)]
    batch = list(itertools.islice(itertools.cycle(prompts), cfg.throughput_batch))
    seconds = _timed_batch(model, tokenizer, batch, cfg.max_new_tokens)

    n = len(predictions)
    metrics = {
        "n": n,
        "accuracy": 100.0 * sum(p.correct for p in predictions) / n,
        "mean_new_tokens": sum(p.new_tokens for p in predictions) / n,
        "latency_median_s": statistics.median(latencies),
        "throughput_qps": len(batch) / seconds,
        "latency_questions": len(timed),
        "throughput_batch": len(batch),
    }
    return Evaluation(predictions, metrics)


def ratio(baseline: Optional[float], faster: Optional[float]) -> Optional[float]:
    """baseline / faster, or None when either is missing or the divisor is not positive."""
    if baseline is None or faster is None or faster <= 0:
        return None
    return baseline / faster


def method_summary(rows: Sequence[Mapping]) -> dict[str, dict[str, Optional[float]]]:
    """Per method on the run's own test split (metrics rows): accuracy, mean new tokens, speedup
    vs FT (FT's median batch-1 latency over the method's) and the generated-token ratio vs FT;
    plus accuracy on the real benchmark's test split when the run evaluated on one."""
    own = {r["method"]: r for r in sorted(rows, key=lambda r: METHODS.index(r["method"])) if r["test_set"] != "real"}
    real = {r["method"]: r for r in rows if r["test_set"] == "real"}
    ft = own.get("ft", {})
    out = {}
    for name, r in own.items():
        speed = ratio(ft.get("latency_median_s"), r["latency_median_s"])
        tokens = ratio(ft.get("mean_new_tokens"), r["mean_new_tokens"])
        out[name] = {
            "accuracy": round(r["accuracy"], 2),
            "n": r.get("n"),
            # From the unrounded accuracy: what a one-run Wilson interval needs.
            "correct": round(r["accuracy"] * r["n"] / 100) if r.get("n") else None,
            "mean_new_tokens": round(r["mean_new_tokens"], 2),
            "speedup_vs_ft": None if speed is None else round(speed, 3),
            "tokens_vs_ft": None if tokens is None else round(tokens, 3),
            "real_accuracy": round(real[name]["accuracy"], 2) if name in real else None,
        }
    return out
