"""Data-parallel training: `train_student` relaunched under `torchrun` (gloo on CPU, NCCL on GPU).

`accelerate launch --cpu` starts only one process on these machines, so the launcher is
`python -m torch.distributed.run --standalone --nproc_per_node N -m skipthink.train_worker JOB`.
The job file carries the call's arguments as JSON (the config dump and the item rows; never a
pickle, which would run whatever code a planted file holds); the workers' Accelerator picks up the
process group from torchrun's environment. Hooks cannot cross processes: the main worker
appends log rows and chunkings to JSON-lines files, and the launching process replays them into
the caller's hooks once the workers are done (progress shows on the workers' tqdm bar).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

JOB_DIR = "ddp"


def in_distributed_worker() -> bool:
    return "LOCAL_RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def launch_distributed(method, train_items, val_items, init_dir, out_dir, cfg, hooks=None, nproc: Optional[int] = None):
    """Run `train_student` in `nproc` (default `training.ddp_processes`) torchrun processes."""
    from skipthink.training import TrainResult

    nproc = nproc or cfg.training.ddp_processes
    job_dir = Path(out_dir) / JOB_DIR
    job_dir.mkdir(parents=True, exist_ok=True)
    for name in ("log.jsonl", "chunkings.jsonl", "result.json"):
        (job_dir / name).unlink(missing_ok=True)
    job = write_job(job_dir / "job.json", method, train_items, val_items, init_dir, out_dir, cfg)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "-m", "skipthink.train_worker", str(job)]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))}
    proc = subprocess.run(cmd, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"distributed training failed (exit {proc.returncode}): {' '.join(cmd)}")
    if hooks is not None:
        _replay(job_dir, hooks)
    return TrainResult.from_json(json.loads((job_dir / "result.json").read_text()))


def write_job(path: Path, method: str, train_items, val_items, init_dir, out_dir, cfg) -> Path:
    job = {"method": method, "train_items": [asdict(i) for i in train_items], "val_items": [asdict(i) for i in val_items],
           "init_dir": str(init_dir), "out_dir": str(out_dir), "cfg": cfg.model_dump(mode="json")}
    path.write_text(json.dumps(job))
    return path


def read_job(path: Path) -> dict[str, Any]:
    """The job with items rebuilt as TrainItems (JSON lists back to the tuples they were)."""
    from skipthink.items import TrainItem

    job = json.loads(Path(path).read_text())
    for key in ("train_items", "val_items"):
        job[key] = [_item(TrainItem, row) for row in job[key]]
    return job


def _item(cls, row: dict[str, Any]):
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in row.items()})


def _replay(job_dir: Path, hooks) -> None:
    for line in _lines(job_dir / "chunkings.jsonl"):
        if hooks.on_chunkings:
            hooks.on_chunkings(line["epoch"], line["rows"])
    for line in _lines(job_dir / "log.jsonl"):
        if hooks.on_log:
            hooks.on_log(line["rows"])


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.is_file() else []


def _append(path: Path, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def main(job_path: str) -> None:
    from skipthink.config import validate_config
    from skipthink.training import TrainHooks, train_student

    job_dir = Path(job_path).parent
    job = read_job(Path(job_path))
    hooks = TrainHooks(
        on_log=lambda rows: _append(job_dir / "log.jsonl", {"rows": rows}),
        on_chunkings=lambda epoch, rows: _append(job_dir / "chunkings.jsonl", {"epoch": epoch, "rows": rows}),
    )
    result = train_student(job["method"], job["train_items"], job["val_items"], Path(job["init_dir"]), Path(job["out_dir"]),
                           validate_config(job["cfg"]), hooks)
    if int(os.environ.get("RANK", "0")) == 0:
        (job_dir / "result.json").write_text(json.dumps(result.to_json()))


if __name__ == "__main__":
    main(sys.argv[1])
