"""ONE training loop for every method: answer-only, ft, cwt-ac, cwt-sbc, stt, skipall.

The methods differ only in the sequences an item yields (`batching.item_segments`), in the
skip samples STT and SkipALL mix in (`batching.epoch_items`), and, for cwt-sbc, in a
chunk-boundary search before every `chunking.refresh_every`-th epoch from the second on (the
first trains on average chunking; validation items are re-chunked too). The loss is
the mean over the batch's target tokens (labels -100 elsewhere, summed across DDP processes),
and only target positions go through the LM head — the head is a large share of a step for a
real vocabulary, and CWT batches have few target tokens.

Epochs are 0-based everywhere (logs, chunkings, best_epoch). Validation runs every epoch on
`val_items` in the method's format (one full sequence per item with loss on every stage's
target, skip samples included for STT/SkipALL); the best epoch's weights become
`out_dir/final`. A checkpoint after each epoch lets a killed run resume when called again with
the same `out_dir` (after the last epoch only the loop state is written: `best/` holds the
weights, and `final/` is hard links to it); a checkpoint of another run, or one that cannot be read, is discarded and
the run starts over. Every run records its budget: optimiser steps and target tokens seen,
and with `training.budget: tokens` the epoch count that matches a target-token budget. With
`training.ddp_processes > 1` the call relaunches itself under `torchrun` (see `train_worker`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import gather_object, set_seed

from skipthink import batching
from skipthink.datasets.synthetic import curriculum_order
from skipthink.checkpoints import commit_checkpoint, latest_checkpoint, load_checkpoint, staging_dir, write_rng
from skipthink.chunking import run_sbc
from skipthink.config import METHODS, PipelineConfig, canonical_json, stable_hash
from skipthink.formats import IGNORE_INDEX, ft_segment
from skipthink.inputs import file_sha256
from skipthink.items import TrainItem
from skipthink.methods import method as method_spec
from skipthink.student import count_parameters, load_student, resolve_device, resolve_precision

ItemKey = tuple[str, int]
logger = logging.getLogger(__name__)


@dataclass
class TrainHooks:
    """Optional callbacks (called on the main process only)."""

    on_log: Optional[Callable[[list[dict]], None]] = None  # {epoch, step, loss, lr, tokens_per_s, val_loss, kind}
    on_chunkings: Optional[Callable[[int, list[dict]], None]] = None  # (epoch, [{sample_id, completion_index, epoch, boundaries, score, moves}])
    on_progress: Optional[Callable[[int, int, dict], None]] = None  # (done_steps, total_steps, info)
    # (epoch, model, tokenizer, validation batches) after each epoch's validation: for analyses
    # that need the weights as they are during training (skipthink.core_tokens).
    on_epoch: Optional[Callable[[int, Any, Any, list], None]] = None


@dataclass
class TrainResult:
    method: str
    final_dir: Path
    safetensors_sha256: str
    steps: int
    epochs_run: int
    best_epoch: int
    best_val_loss: Optional[float]
    train_seconds: float  # wall time of all epochs (SBC and validation included), summed over resumes
    tokens_per_s: float  # non-pad tokens through optimisation steps per second, all processes
    n_params: int
    target_tokens: int = 0  # target (loss-carrying) tokens seen by optimisation steps, all processes
    budget: Optional[dict] = None  # {mode, epochs, token_budget, target_tokens_per_epoch}
    sbc_seconds: float = 0.0
    # cwt-sbc: the boundaries the best epoch was trained on (validated on), per train/val item key.
    final_boundaries: Optional[dict[ItemKey, tuple[int, ...]]] = None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["final_dir"] = str(self.final_dir)
        if self.final_boundaries is not None:
            d["final_boundaries"] = [[k[0], k[1], list(b)] for k, b in self.final_boundaries.items()]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "TrainResult":
        d = dict(d)
        d["final_dir"] = Path(d["final_dir"])
        if d.get("final_boundaries") is not None:
            d["final_boundaries"] = {(s, int(c)): tuple(b) for s, c, b in d["final_boundaries"]}
        return cls(**d)


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW, no decay on biases and norms; the fused kernel (one op per step instead of a
    Python loop over parameter tensors — what made the HF Trainer faster than us on CPU)."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, fused=True)


class TargetLoss(torch.nn.Module):
    """Causal-LM loss on target tokens only: returns (sum of token losses, number of targets).

    Wrapping the LM (instead of calling its parts) keeps DDP's gradient sync hooks in the path.
    """

    def __init__(self, lm):
        super().__init__()
        self.lm = lm

    def forward(self, input_ids, attention_mask, labels):
        hidden = self.lm.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        targets = labels[:, 1:]
        keep = targets != IGNORE_INDEX
        logits = self.lm.get_output_embeddings()(hidden[:, :-1][keep])
        return F.cross_entropy(logits.float(), targets[keep], reduction="sum"), keep.sum()


def lr_factor(schedule: str, warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        if schedule == "linear":
            return 1.0 - progress
        return 1.0

    return factor


def run_key(method: str, cfg: PipelineConfig, train_items: Sequence[TrainItem], val_items: Sequence[TrainItem], init_dir: Path) -> str:
    """What a checkpoint must match to be resumed from: everything that shapes the run."""
    items = json.dumps([[asdict(i) for i in train_items], [asdict(i) for i in val_items]], sort_keys=True, default=str)
    parts = [method, canonical_json(cfg.training), items, str(Path(init_dir).resolve())]
    if method_spec(method).needs_sbc:
        parts.append(canonical_json(cfg.chunking))
    if method_spec(method).skip_prompted:
        parts.append(str(cfg.skip.mix))
    return stable_hash(*parts)


def recover_best(out_dir: Path) -> None:
    """Undo a kill between moving `best/` aside and renaming its replacement into place."""
    best, old = Path(out_dir) / "best", Path(out_dir) / "best.old"
    if not best.exists() and old.exists():
        old.rename(best)


def sbc_refresh_due(epoch: int, refresh_every: int) -> bool:
    """SBC searches before epoch 1, 1+k, 1+2k, ... (epoch 0 trains on average chunking)."""
    return epoch >= 1 and (epoch - 1) % refresh_every == 0


def _target_tokens(encoded: tuple[list[int], list[int]]) -> int:
    return sum(1 for y in encoded[1] if y != IGNORE_INDEX)


def _rows_from_chunkings(items, results, epoch) -> list[dict]:
    return [
        {"sample_id": it.sample_id, "completion_index": it.completion_index, "epoch": epoch, "boundaries": list(r.boundaries), "score": r.score, "moves": r.moves}
        for it, r in zip(items, results)
    ]


class _Loop:
    """State and steps of one train_student call (kept in one object to keep the function readable)."""

    def __init__(self, method, train_items, val_items, init_dir, out_dir, cfg: PipelineConfig, hooks: TrainHooks):
        self.method, self.cfg, self.hooks = method, cfg, hooks
        self.t, self.M = cfg.training, int(cfg.chunking.num_chunks)
        self.mix = cfg.skip.mix if method_spec(method).skip_prompted else 0.0
        self.train_items, self.val_items = list(train_items), list(val_items)
        self.curriculum = curriculum_order(cfg.dataset, [it.question for it in self.train_items])  # None: shuffled batches
        self.init_dir, self.out_dir = Path(init_dir), Path(out_dir)
        device = resolve_device(cfg.student.device)
        # bf16 autocast (fp32 master weights) covers the training steps, validation and SBC scoring.
        mixed = "bf16" if resolve_precision(self.t.precision, device) == "bf16" else "no"
        self.acc = Accelerator(mixed_precision=mixed, cpu=device.type == "cpu")
        self.rank, self.world = self.acc.process_index, self.acc.num_processes
        self.main = self.acc.is_main_process
        set_seed(self.t.seed + self.rank)  # dropout; a resumed run restores the RNG from its checkpoint

        model, self.tokenizer = load_student(self.init_dir, device="cpu")
        model.train()
        self.n_params = count_parameters(model)
        self.encoder = batching.SegmentEncoder(self.tokenizer, self.t.max_length)
        self.key = run_key(method, cfg, self.train_items, self.val_items, self.init_dir)
        sbc = method_spec(method).needs_sbc
        self.state: dict[str, Any] = {
            "run_key": self.key, "epoch": 0, "step": 0, "best_epoch": None, "best_val_loss": None, "bad_epochs": 0,
            "stopped": False, "train_seconds": 0.0, "step_seconds": 0.0, "tokens": 0, "target_tokens": 0, "sbc_seconds": 0.0,
            "boundaries": [list(it.chunk_boundaries(self.M)) for it in self.train_items] if sbc else None,
            "val_boundaries": [list(it.chunk_boundaries(self.M)) for it in self.val_items] if sbc else None,
            "best_boundaries": None, "best_val_boundaries": None,
        }
        # Segment counts do not depend on the chunking, so the budget is fixed before training.
        self.budget = self._plan_budget()
        self.epochs = self.budget["epochs"]
        self.total_steps = sum(self._steps_in_epoch(e) for e in range(self.epochs))
        model, optimizer = self._resume_or_start(model)
        self.loss_module, self.optimizer = self.acc.prepare(TargetLoss(model), optimizer)
        self.val_batches = self._val_batches()

    def _new_optimizer(self, model):
        optimizer = make_optimizer(model, self.t.lr, self.t.weight_decay)
        warmup = int(self.t.warmup_ratio * self.total_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(self.t.schedule, warmup, self.total_steps))
        return optimizer

    def _resume_or_start(self, model):
        """Resume from the latest checkpoint of this very run; discard any other (a checkpoint of
        a different run, or one a kill left unreadable) and start over."""
        optimizer = self._new_optimizer(model)
        recover_best(self.out_dir)
        ckpt = latest_checkpoint(self.out_dir)
        if ckpt is None:
            return model, optimizer
        try:
            state = json.loads((ckpt / "state.json").read_text())
            if state.get("run_key") != self.key:
                raise ValueError("checkpoint of a different run (method, config, items or initial student)")
            self.state = load_checkpoint(ckpt, self.rank, model, optimizer, self.scheduler)
            return model, optimizer
        except Exception as e:  # noqa: BLE001 (any unreadable checkpoint means: start over)
            logger.warning("discarding checkpoints in %s and starting over: %s", self.out_dir, e)
            self.acc.wait_for_everyone()
            if self.main:
                for name in ("checkpoints", "best", "final"):
                    shutil.rmtree(self.out_dir / name, ignore_errors=True)
            self.acc.wait_for_everyone()
            model, _ = load_student(self.init_dir, device="cpu")
            model.train()
            return model, self._new_optimizer(model)

    # ---- budget -----------------------------------------------------------------------
    def _segments(self, epoch: int) -> list[list]:
        return [batching.item_segments(self.method, it, self.M) for it in self._items_now(epoch)]

    def _steps_in_epoch(self, epoch: int) -> int:
        return batching.steps_per_epoch([len(s) for s in self._segments(epoch)], self.t.segment_sampling, self.t.batch_size, self.world)

    def _target_tokens_in_epoch(self, epoch: int) -> int:
        segments = self._segments(epoch)
        units = batching.epoch_units([len(s) for s in segments], self.t.segment_sampling, self.t.seed, epoch)
        return sum(_target_tokens(self.encoder(segments[i][j])) for round_units in units for i, j in round_units)

    def _plan_budget(self) -> dict:
        """Epochs to train: `training.epochs`, or (budget=tokens) the whole number of epochs whose
        target tokens come closest to the token budget (default: FT's in `training.epochs`)."""
        per_epoch = self._target_tokens_in_epoch(0)
        budget = {"mode": self.t.budget, "epochs": self.t.epochs, "target_tokens_per_epoch": per_epoch, "token_budget": None}
        if self.t.budget == "tokens":
            ref = self.t.token_budget
            if ref is None:
                ft = [ft_segment(it.question, it.rationale, it.answer) for it in self.train_items]
                ref = self.t.epochs * sum(_target_tokens(self.encoder(seg)) for seg in ft)
            budget.update(token_budget=ref, epochs=max(1, round(ref / max(per_epoch, 1))))
        return budget

    def _items_now(self, epoch: int) -> list[TrainItem]:
        items = self.train_items
        if self.state["boundaries"] is not None:
            items = [it.with_boundaries(b) for it, b in zip(items, self.state["boundaries"])]
        return batching.epoch_items(items, self.mix, self.t.seed, epoch) if self.mix > 0 else items

    @property
    def model(self):
        return self.acc.unwrap_model(self.loss_module).lm

    # ---- data -------------------------------------------------------------------------
    def _val_samples(self) -> list[TrainItem]:
        """Validation in the method's own formats: each val item (with its current chunking),
        plus its skip sample for STT/SkipALL."""
        items = self.val_items
        if self.state["val_boundaries"] is not None:
            items = [it.with_boundaries(b) for it, b in zip(items, self.state["val_boundaries"])]
        return items + [it.skip_sample() for it in items if self.mix > 0 and it.skip_alternative is not None]

    def _val_batches(self) -> list[batching.Batch]:
        seqs = [batching.full_sequence(self.tokenizer, batching.item_segments(self.method, it, self.M), self.t.max_length) for it in self._val_samples()]
        seqs = sorted(seqs[self.rank :: self.world], key=lambda s: len(s[0]))
        pad = self.tokenizer.pad_token_id
        return [batching.collate(seqs[i : i + self.t.batch_size], pad) for i in range(0, len(seqs), self.t.batch_size)]

    # ---- pieces of an epoch -----------------------------------------------------------
    def refresh_chunkings(self, epoch: int) -> None:
        """SBC over train and validation items (validation is scored in the chunking training
        uses, so it is re-chunked by the same search; it is never trained on)."""
        start = time.perf_counter()
        c = self.cfg.chunking
        items = self.train_items + self.val_items
        current = self.state["boundaries"] + self.state["val_boundaries"]
        mine = list(range(self.rank, len(items), self.world))
        with self.acc.autocast():
            results = run_sbc(
                self.model, self.tokenizer, [items[i] for i in mine], self.M, c,
                self.t.max_length, start=[tuple(current[i]) for i in mine],
            )
        pairs = list(zip(mine, results))
        if self.world > 1:
            pairs = gather_object(pairs)
        by_index = dict(pairs)
        ordered = [by_index[i] for i in range(len(items))]
        n = len(self.train_items)
        self.state["boundaries"] = [list(r.boundaries) for r in ordered[:n]]
        self.state["val_boundaries"] = [list(r.boundaries) for r in ordered[n:]]
        self.val_batches = self._val_batches()
        self.state["sbc_seconds"] += time.perf_counter() - start
        if self.main and self.hooks.on_chunkings:
            self.hooks.on_chunkings(epoch, _rows_from_chunkings(items, ordered, epoch))

    def _global_sum(self, value: torch.Tensor) -> torch.Tensor:
        return self.acc.reduce(value, reduction="sum") if self.world > 1 else value

    def train_step(self, batch: batching.Batch) -> tuple[float, int, int]:
        """One optimisation step; returns (target loss sum, target tokens, non-pad tokens), all processes summed."""
        batch = batch.to(self.acc.device)
        with self.acc.autocast():
            loss_sum, n_targets = self.loss_module(batch.input_ids, batch.attention_mask, batch.labels)
        n_tokens = batch.attention_mask.sum()
        totals = self._global_sum(torch.stack([loss_sum.detach().float(), n_targets.float(), n_tokens.float()]))
        self.acc.backward(loss_sum * self.world / totals[1].clamp(min=1))
        if self.t.grad_clip > 0:
            self.acc.clip_grad_norm_(self.loss_module.parameters(), self.t.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(totals[0]), int(totals[1]), int(totals[2])

    @torch.no_grad()
    def validation_loss(self) -> Optional[float]:
        if not self.val_items:
            return None
        self.loss_module.eval()
        total = torch.zeros(2, device=self.acc.device)
        for batch in self.val_batches:
            batch = batch.to(self.acc.device)
            with self.acc.autocast():
                s, n = self.loss_module(batch.input_ids, batch.attention_mask, batch.labels)
            total += torch.stack([s.float(), n.float()])
        self.loss_module.train()
        total = self._global_sum(total)
        return float(total[0] / total[1].clamp(min=1))

    def save_pretrained(self, path: Path) -> None:
        """Write `path` through a temporary directory; the previous copy is moved aside (not
        deleted) until the new one is in place, so a kill at any point leaves one whole copy."""
        tmp, old = path.with_name(path.name + ".tmp"), path.with_name(path.name + ".old")
        shutil.rmtree(tmp, ignore_errors=True)
        self.model.save_pretrained(tmp)
        self.tokenizer.save_pretrained(tmp)
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
            path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)

    def checkpoint(self, epoch: int) -> None:
        if self.main:
            staging = staging_dir(self.out_dir, epoch)
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
        self.acc.wait_for_everyone()
        write_rng(staging_dir(self.out_dir, epoch), self.rank)
        self.acc.wait_for_everyone()
        if self.main:
            finished = self.state["stopped"] or self.state["epoch"] >= self.epochs
            state = dict(self.state, finished=finished)
            commit_checkpoint(self.out_dir, epoch, self.model, self.optimizer.optimizer, self.scheduler, state, weights=not finished)
        self.acc.wait_for_everyone()

    def _log(self, rows: list[dict]) -> None:
        if self.main and self.hooks.on_log:
            self.hooks.on_log(rows)

    def _progress(self, info: dict) -> None:
        if self.main and self.hooks.on_progress:
            self.hooks.on_progress(self.state["step"], self.total_steps, info)

    # ---- the loop ---------------------------------------------------------------------
    def run(self) -> TrainResult:
        while not self.state["stopped"] and self.state["epoch"] < self.epochs:
            epoch = self.state["epoch"]
            epoch_start = time.perf_counter()
            if method_spec(self.method).needs_sbc and sbc_refresh_due(epoch, self.cfg.chunking.refresh_every):
                self.refresh_chunkings(epoch)
            batches = batching.epoch_batches(
                self._segments(epoch), self.encoder, self.t.batch_size, self.t.segment_sampling, self.t.seed, epoch, self.rank, self.world,
                order=self.curriculum,
            )
            epoch_loss = epoch_targets = 0.0
            win_loss = win_targets = win_tokens = 0.0
            win_start = time.perf_counter()
            for encoded in batches:
                batch = batching.collate(encoded, self.tokenizer.pad_token_id)
                step_start = time.perf_counter()
                loss_sum, n_targets, tokens = self.train_step(batch)
                self.state["step_seconds"] += time.perf_counter() - step_start
                self.state["tokens"] += tokens
                self.state["target_tokens"] += n_targets
                self.state["step"] += 1
                epoch_loss += loss_sum
                epoch_targets += n_targets
                win_loss, win_targets, win_tokens = win_loss + loss_sum, win_targets + n_targets, win_tokens + tokens
                if self.state["step"] % self.t.log_every == 0:
                    now = time.perf_counter()
                    row = {"epoch": epoch, "step": self.state["step"], "loss": win_loss / max(win_targets, 1), "lr": self.scheduler.get_last_lr()[0],
                           "tokens_per_s": win_tokens / max(now - win_start, 1e-9), "val_loss": None, "kind": "train"}
                    self._log([row])
                    self._progress({"epoch": epoch, "loss": row["loss"]})
                    win_loss = win_targets = win_tokens = 0.0
                    win_start = now
            val = self.validation_loss()
            if self.main and self.hooks.on_epoch:
                self.hooks.on_epoch(epoch, self.model, self.tokenizer, [b.to(self.acc.device) for b in self.val_batches])
            self._end_epoch(epoch, val)
            self.state["train_seconds"] += time.perf_counter() - epoch_start
            self._log([{"epoch": epoch, "step": self.state["step"], "loss": epoch_loss / max(epoch_targets, 1), "lr": self.scheduler.get_last_lr()[0],
                        "tokens_per_s": self.state["tokens"] / max(self.state["step_seconds"], 1e-9), "val_loss": val, "kind": "val"}])
            self.checkpoint(epoch)
            self._progress({"epoch": epoch, "val_loss": val, "epoch_done": True})
        return self.finish()

    def _end_epoch(self, epoch: int, val: Optional[float]) -> None:
        s = self.state
        s["epoch"] = epoch + 1
        improved = val is None or s["best_val_loss"] is None or val < s["best_val_loss"]
        if improved:
            s["best_epoch"], s["best_val_loss"], s["bad_epochs"] = epoch, val, 0
            s["best_boundaries"], s["best_val_boundaries"] = s["boundaries"], s["val_boundaries"]
            if self.main:
                self.save_pretrained(self.out_dir / "best")
            self.acc.wait_for_everyone()
        else:
            s["bad_epochs"] += 1
            patience = self.t.early_stopping_patience
            s["stopped"] = patience is not None and s["bad_epochs"] >= patience

    def finish(self) -> TrainResult:
        final = self.out_dir / "final"
        if self.main:
            shutil.rmtree(final, ignore_errors=True)
            # Hard links: no second copy of the weights (best/ is only ever replaced, never written in place).
            shutil.copytree(self.out_dir / "best", final, copy_function=_link_or_copy)
        self.acc.wait_for_everyone()
        s = self.state
        boundaries = None
        if s["best_boundaries"] is not None:
            pairs = zip(self.train_items + self.val_items, s["best_boundaries"] + s["best_val_boundaries"])
            boundaries = {it.key: tuple(b) for it, b in pairs}
        return TrainResult(
            method=self.method,
            final_dir=final,
            safetensors_sha256=file_sha256(final / "model.safetensors"),
            steps=s["step"],
            epochs_run=s["epoch"],
            best_epoch=s["best_epoch"],
            best_val_loss=s["best_val_loss"],
            train_seconds=s["train_seconds"],
            tokens_per_s=s["tokens"] / max(s["step_seconds"], 1e-9),
            n_params=self.n_params,
            target_tokens=s["target_tokens"],
            budget=self.budget,
            sbc_seconds=s["sbc_seconds"],
            final_boundaries=boundaries,
        )


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed
        shutil.copy2(src, dst)


def train_student(
    method: str,
    train_items: Sequence[TrainItem],
    val_items: Sequence[TrainItem],
    init_dir: Path,
    out_dir: Path,
    cfg: PipelineConfig,
    hooks: Optional[TrainHooks] = None,
) -> TrainResult:
    """Train one method from the initial student in `init_dir`; resumes from `out_dir` checkpoints."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if not train_items:
        raise ValueError("no training items")
    from skipthink.train_worker import in_distributed_worker, launch_distributed

    if cfg.training.ddp_processes > 1 and not in_distributed_worker():
        return launch_distributed(method, train_items, val_items, init_dir, out_dir, cfg, hooks)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return _Loop(method, train_items, val_items, init_dir, out_dir, cfg, hooks or TrainHooks()).run()
