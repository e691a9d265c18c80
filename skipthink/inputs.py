"""Content fingerprints of the files a config points at.

A stage's fingerprint hashes its config section, and a path in a section says where data is,
not what it is: an edited data file would leave every stage cached with stale results, and a
relative path names different files from different directories. `file_inputs(cfg)` gives, per
stage, the resolved absolute path and a content hash (size + sha256) of each file the stage
reads; `merge_inputs` puts them in place of the path strings in the stage's section.

Hashes are cached by (path, size, mtime_ns): in memory, and in a JSON file under the home so a
new process does not re-read a model directory. A file rewritten with the same size within the
same nanosecond timestamp would go unnoticed; nothing here writes files that way.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterable, Optional

from pydantic import BaseModel

from skipthink.datasets.base import DatasetError
from skipthink.datasets.finetune_cot import completion_file, split_file
from skipthink.config import FINETUNE_COT_DATASETS, PipelineConfig

CACHE_FILE = Path("cache") / "file-hashes.json"

_memory: dict[tuple[str, int, int], str] = {}
_memory_guard = threading.Lock()


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, streamed (the one copy: checkpoints and input files use it)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class HashCache:
    """(path, size, mtime_ns) -> "size:sha256", in memory and optionally in a JSON file."""

    def __init__(self, file: Optional[Path] = None):
        self.file = Path(file) if file else None
        self._disk: dict[str, str] = {}
        self._dirty = False
        if self.file is not None and self.file.is_file():
            try:
                loaded = json.loads(self.file.read_text())
                self._disk = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                self._disk = {}  # a damaged cache is only a cache

    def fingerprint(self, path: Path) -> str:
        path = Path(path).expanduser().resolve()
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        disk_key = f"{key[0]}|{key[1]}|{key[2]}"
        with _memory_guard:
            found = _memory.get(key) or self._disk.get(disk_key)
        if found is None:
            found = f"{st.st_size}:{file_sha256(path)}"
        with _memory_guard:
            _memory[key] = found
            if self._disk.get(disk_key) != found:
                self._disk[disk_key] = found
                self._dirty = True
        return found

    def save(self) -> None:
        """Write the JSON cache atomically; a home we cannot write only costs re-hashing."""
        if self.file is None or not self._dirty:
            return
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.file.parent, prefix=self.file.name, suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                json.dump(self._disk, f, sort_keys=True)
            os.replace(tmp, self.file)
            self._dirty = False
        except OSError:
            pass


def content_fingerprint(path: str | Path, cache: Optional[HashCache] = None) -> str:
    """"size:sha256" of a file, cached by (path, size, mtime_ns)."""
    return (cache or HashCache()).fingerprint(Path(path))


def _file_entry(path: Path, cache: HashCache) -> dict[str, Any]:
    resolved = Path(path).expanduser().resolve()
    if not resolved.is_file():
        return {"path": str(resolved), "missing": True}  # the stage itself reports it
    return {"path": str(resolved), "content": cache.fingerprint(resolved)}


def _files_entry(root: Path, files: Iterable[Path], cache: HashCache) -> dict[str, Any]:
    root = Path(root).expanduser().resolve()
    return {"path": str(root), "files": {os.path.relpath(f, root): cache.fingerprint(f) for f in sorted(files)}}


def _tree_entry(root: Path, cache: HashCache) -> dict[str, Any]:
    root = Path(root).expanduser().resolve()
    return _files_entry(root, (p for p in root.rglob("*") if p.is_file()), cache)


def _finetune_cot_entry(data_dir: Path, dataset: str, cache: HashCache) -> dict[str, Any]:
    """The two files the Fine-tune-CoT loader reads for `dataset`, not the whole release tree."""
    root = Path(data_dir).expanduser().resolve()
    try:
        files = [completion_file(root, dataset), split_file(root, dataset)]
    except DatasetError:
        return {"path": str(root), "missing": True}
    return _files_entry(root, files, cache)


def _replay_entry(data_dir: Path, cache: HashCache) -> dict[str, Any]:
    # The replay server loads every completion file under its directory.
    root = Path(data_dir).expanduser().resolve()
    files = sorted(root.rglob("D_*.json")) if root.is_dir() else []
    return _files_entry(root, files, cache) if files else {"path": str(root), "missing": True}


def file_inputs(cfg: PipelineConfig, cache: Optional[HashCache] = None) -> dict[str, dict]:
    """Per stage name, the section entries that replace path strings with (path, content)."""
    own_cache = cache is None
    cache = cache or HashCache(Path(cfg.storage.home).expanduser() / CACHE_FILE)
    d, t, s, e = cfg.dataset, cfg.teacher, cfg.student, cfg.evaluation
    out: dict[str, dict] = {}
    data: dict[str, Any] = {}
    if d.source == "file" and d.path is not None:
        data["path"] = _file_entry(d.path, cache)
    if d.source == "finetune_cot" and d.data_dir is not None:
        data["data_dir"] = _finetune_cot_entry(d.data_dir, d.name, cache)
    teacher: dict[str, Any] = {}
    if t.prompt == "few_shot" and t.few_shot_file is not None:
        teacher["few_shot_file"] = _file_entry(t.few_shot_file, cache)
    if t.base_url is None and t.server.backend == "replay" and t.server.data_dir is not None:
        teacher["server"] = {"data_dir": _replay_entry(t.server.data_dir, cache)}
    student: dict[str, Any] = {}
    if s.kind == "pretrained" and s.name_or_path and Path(s.name_or_path).expanduser().is_dir():
        student["name_or_path"] = _tree_entry(Path(s.name_or_path), cache)  # else a hub name
    evaluate: dict[str, Any] = {}
    if e.real_data_dir is not None and d.source == "synthetic" and d.name in FINETUNE_COT_DATASETS:
        evaluate["evaluation"] = {"real_data_dir": _finetune_cot_entry(e.real_data_dir, d.name, cache)}
    for stage, entries in (("data", data), ("teacher", teacher), ("student", student), ("evaluate", evaluate)):
        if entries:
            out[stage] = entries
    if own_cache:
        cache.save()
    return out


def merge_inputs(section: Any, entries: dict) -> Any:
    """`section` (a model or dict) with `entries` merged in; unchanged when there are none, so
    stages that read no files keep their fingerprints."""
    if not entries:
        return section
    data = section.model_dump(mode="json") if isinstance(section, BaseModel) else dict(section)
    return _deep_merge(data, entries)


def _deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
