"""`skipthink bench train`: training speed of our loop against a Hugging Face Trainer, per precision.

Tokens/s counts NON-PAD tokens (attention-mask ones) that go through an optimisation step, the
same way for our loop and for the Trainer; the first `warmup` steps of each are excluded. Both
train the preset's student (or the named pretrained `student`), from the same initial weights,
on the same FT sequences (coin-flip rationales made up here, in the teacher's style), once per
precision: fp32, and bf16 autocast over fp32 master weights (the Trainer's `bf16=True`). CWT is
timed with our loop only (one segment per item per step). `sbc_share_of_epoch`
is the wall time of one full greedy SBC round over the training items divided by the wall time
of one CWT training epoch of the same items, both timed side by side at the first precision
(see `time_sbc_round`). `mfu` is model FLOPs per second (6·N per token plus attention, nanoGPT's
estimate) over this machine's measured dense fp32 matmul rate (no published peak exists for an
arbitrary CPU). `bf16_native` says whether this CPU has bf16 instructions (avx512_bf16 / AMX);
without them bf16 is emulated and slower, which is why `training.precision: auto` picks fp32.
"""

from __future__ import annotations

import contextlib
import random
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

import torch

from skipthink import batching
from skipthink.chunking import LossScorer, greedy_search
from skipthink.config import auto_num_chunks, load_config
from skipthink.items import TrainItem, make_item
from skipthink.student import bf16_supported, build_initial_student, count_parameters, load_student
from skipthink.text import split_steps
from skipthink.training import TargetLoss, make_optimizer

NAMES = ["Ka", "Sherrie", "Lee", "Maybelle", "Rex", "Jamey", "Shaunda", "Millicent", "Conception", "Inga"]


def toy_items(n: int, num_chunks: int, seed: int = 0) -> list[TrainItem]:
    """Coin-flip questions with zero-shot-CoT-style rationales (one sentence per person)."""
    rng = random.Random(seed)
    items = []
    for k in range(n):
        people = rng.sample(NAMES, 4)
        flips = [rng.random() < 0.5 for _ in people]
        question = "A coin is heads up. " + " ".join(f"{p} {'flips' if f else 'does not flip'} the coin." for p, f in zip(people, flips))
        question += " Is the coin still heads up? Note that \"flip\" here means \"reverse\"."
        heads, sentences = True, ["The coin starts heads up."]
        for p, f in zip(people, flips):
            heads ^= f
            side = "heads" if heads else "tails"
            sentences.append(f"{p} {'flips the coin, so it is now' if f else 'does not flip the coin, so it stays'} {side} up.")
        answer = "yes" if heads else "no"
        sentences.append(f"The coin ends {'heads' if heads else 'tails'} up, so the answer is {answer}.")
        items.append(make_item(f"toy-{k}", 0, question, answer, " ".join(sentences), num_chunks))
    return items


def item_texts(items) -> list[str]:
    return [t for it in items for t in (it.question, it.rationale, it.answer)]


def measured_matmul_flops(n: int = 2048, trials: int = 5) -> float:
    """Best of several timed fp32 matmuls: this machine's practical dense peak."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = 0.0
    for _ in range(trials):
        start = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - start))
    return best


def autocast(precision: str):
    """bf16 autocast on CPU, or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _time_our_loop(model, tokenizer, stages, cfg, steps: int, warmup: int, precision: str = "fp32") -> dict:
    t = cfg.training
    loss_module = TargetLoss(model).train()
    optimizer = make_optimizer(model, t.lr, t.weight_decay)
    encoder = batching.SegmentEncoder(tokenizer, t.max_length)
    batches: list = []
    epoch = 0
    while len(batches) < steps + warmup:
        batches += batching.epoch_batches(stages, encoder, t.batch_size, t.segment_sampling, t.seed, epoch)
        epoch += 1
    tokens, start = 0, None
    for i, encoded in enumerate(batches[: steps + warmup]):
        if i == warmup:
            start = time.perf_counter()
        batch = batching.collate(encoded, tokenizer.pad_token_id)
        with autocast(precision):
            loss_sum, n = loss_module(batch.input_ids, batch.attention_mask, batch.labels)
        (loss_sum / n).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i >= warmup:
            tokens += batch.n_tokens
    seconds = time.perf_counter() - start
    return {"tokens_per_s": tokens / seconds, "seconds_per_step": seconds / steps, "mean_tokens_per_step": tokens / steps}


def _time_hf_trainer(init_dir: Path, examples, cfg, steps: int, warmup: int, work: Path, precision: str = "fp32") -> float:
    from transformers import Trainer, TrainingArguments

    model, tokenizer = load_student(init_dir, device="cpu")
    model.train()
    pad = tokenizer.pad_token_id
    timing = {"tokens": 0, "start": None}

    class TimedTrainer(Trainer):
        def training_step(self, model, inputs, num_items_in_batch=None):
            if self.state.global_step == warmup:
                timing["start"] = time.perf_counter()
            if self.state.global_step >= warmup:
                timing["tokens"] += int(inputs["attention_mask"].sum())
            return super().training_step(model, inputs, num_items_in_batch)

    def collate(rows):
        b = batching.collate([(r["input_ids"], r["labels"]) for r in rows], pad)
        return {"input_ids": b.input_ids, "attention_mask": b.attention_mask, "labels": b.labels}

    args = TrainingArguments(
        output_dir=str(work / "hf"), max_steps=steps + warmup, per_device_train_batch_size=cfg.training.batch_size,
        learning_rate=cfg.training.lr, max_grad_norm=cfg.training.grad_clip, lr_scheduler_type="constant", logging_strategy="no",
        save_strategy="no", report_to=[], use_cpu=True, dataloader_num_workers=0, seed=cfg.training.seed, disable_tqdm=True,
        train_sampling_strategy="group_by_length", length_column_name="length", bf16=precision == "bf16",
    )
    data = [{"input_ids": x, "labels": y, "length": len(x)} for x, y in examples]
    trainer = TimedTrainer(model=model, args=args, train_dataset=data, data_collator=collate)
    trainer.train()
    return timing["tokens"] / (time.perf_counter() - timing["start"])


def toy_num_chunks() -> int:
    """What `num_chunks: auto` picks on the toy items: their mean step count (6)."""
    return auto_num_chunks([len(split_steps(it.rationale)) for it in toy_items(32, 2)])


def bench_config(preset: str, student: Optional[str]):
    """The preset's config, with its student replaced by the named pretrained one if given, and
    `num_chunks: auto` resolved on the toy items (a run resolves it on its rationales)."""
    overrides = [] if student is None else ["student.kind=pretrained", f"student.name={student}", "student.name_or_path=null"]
    cfg = load_config(preset, overrides=overrides)
    if cfg.chunking.num_chunks == "auto":
        cfg = cfg.model_copy(update={"chunking": cfg.chunking.model_copy(update={"num_chunks": toy_num_chunks()})})
    return cfg


def run(preset: str = "demo", steps: int = 30, warmup: int = 5, n_items: int = 256, student: Optional[str] = None,
        precisions: Sequence[str] = ("fp32", "bf16")) -> dict:
    """`student` names a pulled registry model (e.g. smollm2-135m) to time instead of the preset's."""
    cfg = bench_config(preset, student)
    M = cfg.chunking.num_chunks
    items = toy_items(n_items, M)
    torch.manual_seed(0)
    per_precision: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        init_dir = build_initial_student(cfg.student, item_texts(items), M, work / "init")
        ft_stages = [batching.item_segments("ft", it, M) for it in items]
        cwt_stages = [batching.item_segments("cwt-ac", it, M) for it in items]
        for precision in precisions:
            model, tokenizer = load_student(init_dir, device="cpu")
            ft = _time_our_loop(model, tokenizer, ft_stages, cfg, steps, warmup, precision)
            model, tokenizer = load_student(init_dir, device="cpu")
            cwt = _time_our_loop(model, tokenizer, cwt_stages, cfg, steps, warmup, precision)
            encoder = batching.SegmentEncoder(tokenizer, cfg.training.max_length)
            trainer_tps = _time_hf_trainer(init_dir, [encoder(s[0]) for s in ft_stages], cfg, steps, warmup, work, precision)
            per_precision[precision] = {"ft": ft, "cwt": cwt, "trainer_tokens_per_s": trainer_tps}

        first = per_precision[precisions[0]]
        with autocast(precisions[0]):
            sbc = time_sbc_round(model, tokenizer, items, cwt_stages, cfg, M, precision=precisions[0])

        n_params = count_parameters(model)
        conf = model.config
        flops_per_token = 6 * n_params + 12 * conf.num_hidden_layers * conf.hidden_size * first["ft"]["mean_tokens_per_step"] / cfg.training.batch_size
        peak = measured_matmul_flops()
    result = {
        "bench": "train",
        "preset": preset,
        "student": student or cfg.student.kind,
        "token_count": "non-pad tokens",
        "n_params": n_params,
        "batch_size": cfg.training.batch_size,
        "timed_steps": steps,
        "torch_threads": torch.get_num_threads(),
        "bf16_native": bf16_supported(torch.device("cpu")),
    }
    for precision, r in per_precision.items():
        ft, cwt, trainer_tps = r["ft"], r["cwt"], r["trainer_tokens_per_s"]
        result[precision] = {
            "ft_tokens_per_s": round(ft["tokens_per_s"], 1),
            "cwt_tokens_per_s": round(cwt["tokens_per_s"], 1),
            "trainer_tokens_per_s": round(trainer_tps, 1),
            "ft_vs_trainer": round(ft["tokens_per_s"] / trainer_tps, 3),
            "ft_seconds_per_step": round(ft["seconds_per_step"], 4),
            "cwt_seconds_per_step": round(cwt["seconds_per_step"], 4),
        }
    if {"fp32", "bf16"} <= set(per_precision):
        result["bf16_vs_fp32_ft"] = round(per_precision["bf16"]["ft"]["tokens_per_s"] / per_precision["fp32"]["ft"]["tokens_per_s"], 3)
    result.update({
        "sbc_share_of_epoch": sbc["share_of_epoch"]["prefix_shared"],
        "sbc": sbc,
        "mfu": round(first["ft"]["tokens_per_s"] * flops_per_token / peak, 4),
        "matmul_flops": round(peak / 1e9, 2),
    })
    return result


def time_sbc_round(model, tokenizer, items, cwt_stages, cfg, num_chunks: int, repeats: int = 2, precision: str = "fp32") -> dict:
    """One greedy SBC round over `items`, with the plain scorer (one full pass per chunking) and the
    prefix-sharing one, each against one timed CWT epoch of the same items.

    The three are interleaved `repeats` times (an epoch, then each scorer) so that a loaded machine
    slows all of them alike; the fastest time of each is kept. The model trains on during the
    epochs, so each repeat scores a slightly better student; both scorers see the same one.
    """
    t = cfg.training
    epoch_steps = batching.steps_per_epoch([len(s) for s in cwt_stages], t.segment_sampling, t.batch_size, 1)
    start = [it.chunk_boundaries(num_chunks) for it in items]
    seconds: dict[str, list[float]] = {"cwt_epoch": [], "plain": [], "prefix_shared": []}
    for _ in range(repeats):
        seconds["cwt_epoch"].append(_time_our_loop(model, tokenizer, cwt_stages, cfg, epoch_steps, 0, precision)["seconds_per_step"] * epoch_steps)
        for name, share in (("plain", False), ("prefix_shared", True)):
            scorer = LossScorer(model, tokenizer, num_chunks, t.max_length, cfg.chunking.score_batch_size, share_prefix=share)
            began = time.perf_counter()
            greedy_search(items, start, scorer, eta=0.0, max_rounds=1)
            seconds[name].append(time.perf_counter() - began)
    best = {k: min(v) for k, v in seconds.items()}
    return {
        "segment_sampling": t.segment_sampling,
        "cwt_epoch_steps": epoch_steps,
        "seconds": {k: round(v, 3) for k, v in best.items()},
        "share_of_epoch": {k: round(best[k] / best["cwt_epoch"], 3) for k in ("plain", "prefix_shared")},
    }
