"""`skipthink bench generate`: our batched greedy decoder against one-by-one `generate()` calls,
and STT against FT latency at batch 1.

The model is the preset's student, freshly initialised (speed does not depend on the weights),
with a tokenizer trained on toy coin-flip items, or a pulled pretrained `student` (its own
weights and tokenizer, markers added) with its weights cast to `precision`; prompts are those
items' questions. A 135M student decodes one by one slowly, so `one_by_one_prompts` times only
the first few prompts that way; the speedup compares rates (tokens/s), not totals. Every
sequence is forced to write exactly `new_tokens` tokens (EOS suppressed) in both runs, so both
do the same work and tokens/s compare directly. Each is timed `repeats` times after a warm-up
and the fastest run counts (the machine is shared; the minimum is the least disturbed). On a
loaded machine, torch's default of one thread per core degrades badly (threads wait on each
other); `threads=1` gives steadier, if lower, numbers.

An untrained model cannot show STT writing less, so the latency part times what it would do:
batch-1 generation of an FT-length output after the FT prompt against an STT-length output
after the `[skip]` prompt, forced to those lengths, median over several questions. Lengths are
passed in (e.g. the measured `mean_new_tokens` of a run's FT and STT) or, by default, taken
from the toy items: FT = ` {rationale} --> {answer}` + EOS; STT = the same items with every
medium chunk skipped (an upper bound on skipping). The output's `latency_method` says which.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Optional

import torch

from skipthink.formats import chunk_segments, ft_segment, question_prompt
from skipthink.generation import generate_ids
from skipthink.perf.train import item_texts, toy_items
from skipthink.skipdata import candidate_positions
from skipthink.perf.train import bench_config
from skipthink.student import build_initial_student, build_scratch_model, count_parameters, load_student, resolve_precision, train_tokenizer

LATENCY_QUESTIONS = 5


def _target_tokens(tokenizer, stage) -> int:
    return len(tokenizer.encode(stage.target, add_special_tokens=False)) + 1  # + EOS


def _default_lengths(tokenizer, items, num_chunks: int) -> tuple[float, float]:
    medium = set(candidate_positions(num_chunks, "medium"))
    mask = [j in medium for j in range(1, num_chunks + 1)]
    ft = [_target_tokens(tokenizer, ft_segment(it.question, it.rationale, it.answer)) for it in items]
    stt = []
    for it in items:
        stages = chunk_segments(it.question, it.chunks(num_chunks), it.answer, mask)
        stt.append(sum(_target_tokens(tokenizer, s) - 1 for s in stages) + 1)
    return statistics.mean(ft), statistics.mean(stt)


def _tokens_per_s(seconds: float, sequences: int, new_tokens: int) -> float:
    return sequences * new_tokens / seconds


def _source(given: Optional[float]) -> str:
    return "given" if given is not None else "toy items; STT skips every medium chunk, an upper bound"


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _batch1_latency(model, prompts: list[list[int]], new_tokens: int, eos: int) -> float:
    outs = [generate_ids(model, [p], max_new_tokens=new_tokens, eos_token_id=eos, min_new_tokens=new_tokens)[0] for p in prompts]
    return statistics.median(o.seconds for o in outs)


def _model_and_tokenizer(cfg, items, precision: str):
    num_chunks = cfg.chunking.num_chunks
    if cfg.student.kind == "pretrained" and cfg.student.name:
        with tempfile.TemporaryDirectory() as tmp:
            init_dir = build_initial_student(cfg.student, [], num_chunks, Path(tmp) / "init")
            return load_student(init_dir, device="cpu", precision=precision)
    tokenizer = train_tokenizer(item_texts(items), cfg.student.vocab_size, num_chunks)
    # A pretrained student given by hub name (gpt2-synthetic preset: GPT-2 124M) is timed as a scratch model of its shape.
    student = cfg.student if cfg.student.kind == "scratch" else cfg.student.model_copy(update={"kind": "scratch", "size": "base"})
    model = build_scratch_model(student, tokenizer).eval()
    return model.to(torch.bfloat16 if resolve_precision(precision, torch.device("cpu")) == "bf16" else torch.float32), tokenizer


@torch.inference_mode()
def run(preset: str = "demo", batch_size: int = 32, new_tokens: int = 64, repeats: int = 3,
        ft_new_tokens: Optional[float] = None, stt_new_tokens: Optional[float] = None, threads: Optional[int] = None,
        student: Optional[str] = None, precision: str = "fp32", one_by_one_prompts: Optional[int] = None) -> dict:
    """`threads` sets torch's intra-op threads (None: torch's default, one per core)."""
    if threads is not None:
        torch.set_num_threads(threads)
    cfg = bench_config(preset, student)
    num_chunks = cfg.chunking.num_chunks
    items = toy_items(max(batch_size, LATENCY_QUESTIONS), num_chunks)
    model, tokenizer = _model_and_tokenizer(cfg, items, precision)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    prompts = [tokenizer.encode(question_prompt(it.question), add_special_tokens=False) for it in items[:batch_size]]

    def batched() -> None:
        outs = generate_ids(model, prompts, max_new_tokens=new_tokens, eos_token_id=eos, pad_token_id=pad,
                            batch_size=batch_size, min_new_tokens=new_tokens)
        assert all(o.new_tokens == new_tokens for o in outs)

    def one_by_one(subset) -> None:
        for p in subset:
            ids = torch.tensor([p])
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                 do_sample=False, pad_token_id=pad, eos_token_id=eos)
            assert out.shape[1] - ids.shape[1] == new_tokens

    # Warm-up at the timed shapes: the first pass through each new KV-cache length is several
    # times slower on CPU (allocation), which would otherwise be charged to whichever runs first.
    singles = prompts[: one_by_one_prompts or len(prompts)]
    batched()
    one_by_one(prompts[:2])
    batched_s = min(_seconds(batched) for _ in range(repeats))
    one_by_one_s = min(_seconds(lambda: one_by_one(singles)) for _ in range(repeats))
    batched_tps = _tokens_per_s(batched_s, len(prompts), new_tokens)
    one_by_one_tps = _tokens_per_s(one_by_one_s, len(singles), new_tokens)

    default_ft, default_stt = _default_lengths(tokenizer, items, num_chunks)
    ft_len = round(ft_new_tokens if ft_new_tokens is not None else default_ft)
    stt_len = round(stt_new_tokens if stt_new_tokens is not None else default_stt)
    timed = items[:LATENCY_QUESTIONS]
    ft_prompts = [tokenizer.encode(question_prompt(it.question), add_special_tokens=False) for it in timed]
    stt_prompts = [tokenizer.encode(question_prompt(it.question, skip=True), add_special_tokens=False) for it in timed]
    _batch1_latency(model, ft_prompts[:1], max(ft_len, stt_len), eos)  # warm-up
    ft_latency = _batch1_latency(model, ft_prompts, ft_len, eos)
    stt_latency = _batch1_latency(model, stt_prompts, stt_len, eos)

    return {
        "benchmark": "generate",
        "preset": preset,
        "student": student or cfg.student.kind,
        "dtype": str(model.dtype).removeprefix("torch."),
        "n_params": count_parameters(model),
        "batch_size": batch_size,
        "new_tokens": new_tokens,
        "repeats": repeats,
        "one_by_one_prompts": len(singles),
        "torch_threads": torch.get_num_threads(),
        "batched_tokens_per_s": batched_tps,
        "one_by_one_tokens_per_s": one_by_one_tps,
        "speedup": batched_tps / one_by_one_tps,
        "ft_new_tokens": ft_len,
        "stt_new_tokens": stt_len,
        "ft_latency_s": ft_latency,
        "stt_latency_s": stt_latency,
        "stt_vs_ft_latency": ft_latency / stt_latency,
        "latency_method": (
            f"batch-1 greedy decoding of an untrained model forced to FT={ft_len} ({_source(ft_new_tokens)}) and "
            f"STT={stt_len} ({_source(stt_new_tokens)}) new tokens, median over {LATENCY_QUESTIONS} questions"
        ),
    }
