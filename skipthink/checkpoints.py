"""Per-epoch training checkpoints, so a killed run resumes where it stopped.

A checkpoint directory `out_dir/checkpoints/epoch-NNNN/` holds the weights, optimizer and
scheduler states (`trainer.pt`), each process's RNG states (`rng-RANK.pt`) and the loop's own
state (`state.json`: next epoch, step, best epoch, current chunk boundaries, ...). It is written
under a temporary name and renamed when complete, so a run killed mid-write leaves only whole
checkpoints; older ones are deleted once a newer one exists.

Everything is read back with `torch.load(weights_only=True)`: a checkpoint is tensors, numbers,
strings and containers of them (the RNG states included), so a planted `trainer.pt` cannot run
code, and a file that is not such a checkpoint raises `CheckpointError` naming it.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any, Optional

import torch

CHECKPOINTS = "checkpoints"
STATE_FILE = "state.json"
TRAINER_FILE = "trainer.pt"


class CheckpointError(RuntimeError):
    """A checkpoint file that is truncated, corrupt or holds more than plain state."""


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_dir(out_dir: Path, epoch: int) -> Path:
    return Path(out_dir) / CHECKPOINTS / f"epoch-{epoch:04d}"


def staging_dir(out_dir: Path, epoch: int) -> Path:
    d = checkpoint_dir(out_dir, epoch)
    return d.with_name(d.name + ".tmp")


def write_rng(staging: Path, rank: int) -> None:
    torch.save(rng_state(), staging / f"rng-{rank}.pt")


def commit_checkpoint(out_dir: Path, epoch: int, model, optimizer, scheduler, state: dict[str, Any], weights: bool = True) -> Path:
    """Main process: write the shared parts into the staging dir, rename it, drop older checkpoints.

    `weights=False` writes the loop state alone: after the last epoch nothing is left to train,
    `best/` already holds the weights to finish from, and the weights and optimizer would cost
    three model copies of disk and write time (2.2 GB for a 135M-parameter student)."""
    staging = staging_dir(out_dir, epoch)
    if weights:
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, staging / TRAINER_FILE)
    (staging / STATE_FILE).write_text(json.dumps(state, indent=1, sort_keys=True))
    final = checkpoint_dir(out_dir, epoch)
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    for old in (Path(out_dir) / CHECKPOINTS).iterdir():
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(out_dir: Path) -> Optional[Path]:
    root = Path(out_dir) / CHECKPOINTS
    if not root.is_dir():
        return None
    done = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.endswith(".tmp") and (p / STATE_FILE).is_file())
    return done[-1] if done else None


def load_checkpoint(path: Path, rank: int, model, optimizer, scheduler) -> dict[str, Any]:
    """Restore weights, optimizer, scheduler and this process's RNG; returns the loop state.
    A state-only checkpoint (`weights=False`) restores nothing but the state, and only when the
    state says the loop has finished."""
    state = _read_state(path / STATE_FILE)
    if not (path / TRAINER_FILE).exists() and state.get("finished"):
        return state
    blobs = _load(path / TRAINER_FILE)
    model.load_state_dict(blobs["model"])
    optimizer.load_state_dict(blobs["optimizer"])
    scheduler.load_state_dict(blobs["scheduler"])
    rng_file = path / f"rng-{rank}.pt"
    if rng_file.is_file():
        set_rng_state(_load(rng_file))
    return state


def _load(file: Path) -> Any:
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError... for a bad file
        raise CheckpointError(f"{file}: not a loadable checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from e


def _read_state(file: Path) -> dict[str, Any]:
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{file}: unreadable loop state ({type(e).__name__}: {e})") from e
