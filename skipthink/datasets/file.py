"""User datasets: a local JSON / JSONL / Parquet / CSV file, or a Hugging Face hub dataset.

`DatasetConfig.fields` says which record fields hold the question, answer and optional
rationale and split; `DatasetConfig.answer_type` says how answers are scored. Every record is
checked before anything is returned, and an error names the file and the record (JSONL and CSV:
line number; JSON and Parquet: index) or, for text that is not UTF-8, the byte offset. JSONL, CSV
and Parquet are read a line (row group) at a time; a byte-order mark is ignored.
"""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator, Optional

from skipthink.datasets.base import DatasetError, Example
from skipthink.datasets.finetune_cot import decode_utf8, read_json
from skipthink.datasets.scoring import choice_letters
from skipthink.config import DatasetConfig

# Split names accepted in a record's split field, and what they mean here.
SPLIT_ALIASES = {"train": "train", "test": "test", "val": "val", "validation": "val", "dev": "val"}


def _json_records(path: Path) -> Iterator[tuple[str, Any]]:
    # JSON cannot be parsed piecewise without another dependency; JSONL and CSV stream.
    raw = read_json(path)
    if isinstance(raw, dict):
        key = next((k for k in ("examples", "data") if isinstance(raw.get(k), list)), None)
        if key is None:
            raise DatasetError(f"{path}: expected a list of records or an object with an 'examples' or 'data' list")
        raw = raw[key]
    if not isinstance(raw, list):
        raise DatasetError(f"{path}: expected a list of records")
    return ((f"record {i}", r) for i, r in enumerate(raw))


def _utf8_lines(path: Path) -> Iterator[str]:
    """The file's lines (endings kept), decoded one at a time so a bad byte is located exactly."""
    offset = 0
    with path.open("rb") as f:
        for raw in f:
            yield decode_utf8(path, raw, offset)
            offset += len(raw)


def _jsonl_records(path: Path) -> Iterator[tuple[str, Any]]:
    for number, line in enumerate(_utf8_lines(path), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise DatasetError(f"{path}: line {number} is not valid JSON: {e.msg}") from None
        yield f"line {number}", record


def _csv_records(path: Path) -> Iterator[tuple[str, Any]]:
    rows = csv.reader(_utf8_lines(path))
    where = "line 1"
    try:
        header = next(rows, None)
        if header is None:
            return
        while True:
            where = f"line {rows.line_num + 1}"  # where the record starts (it may span lines)
            values = next(rows, None)
            if values is None:
                return
            if not values:
                continue
            if len(values) != len(header):
                raise DatasetError(f"{path}: {where}: {len(values)} columns, the header has {len(header)}")
            yield where, dict(zip(header, values))
    except csv.Error as e:
        raise DatasetError(f"{path}: {where}: not valid CSV: {e}") from None


def _parquet_records(path: Path) -> Iterator[tuple[str, Any]]:
    import pyarrow.parquet as pq

    try:
        batches = pq.ParquetFile(path).iter_batches()
        index = 0
        for batch in batches:
            for record in batch.to_pylist():
                yield f"record {index}", record
                index += 1
    except Exception as e:  # pyarrow raises several types for a corrupt file
        raise DatasetError(f"{path}: not a readable Parquet file: {e}") from None


_READERS = {".json": _json_records, ".jsonl": _jsonl_records, ".csv": _csv_records, ".parquet": _parquet_records}


def _text(value: Any, at: str, field: str) -> Optional[str]:
    """A text field's value; numbers are text too (answers often are), anything else is an error
    rather than its Python repr silently becoming a question or an answer."""
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN from Parquet / pandas
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return str(value)
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    raise DatasetError(f"{at}: field {field!r} holds a {type(value).__name__} ({shown}); expected text")


def _example(cfg: DatasetConfig, source: str, where: str, index: int, record: Any, default_split: str) -> Example:
    at = f"{source}: {where}"
    if not isinstance(record, dict):
        raise DatasetError(f"{at}: expected an object, got {type(record).__name__}")
    fields = cfg.fields
    question = _text(record.get(fields.question), at, fields.question)
    if question is None or not question.strip():
        raise DatasetError(f"{at}: missing or empty question field {fields.question!r}")
    answer = _text(record.get(fields.answer), at, fields.answer)
    if answer is None or not answer.strip():
        raise DatasetError(f"{at}: missing or empty answer field {fields.answer!r}")
    split = default_split
    if fields.split:
        raw_split = _text(record.get(fields.split), at, fields.split)
        if raw_split is None or raw_split.strip().lower() not in SPLIT_ALIASES:
            raise DatasetError(f"{at}: split field {fields.split!r} is {raw_split!r}; expected one of {', '.join(SPLIT_ALIASES)}")
        split = SPLIT_ALIASES[raw_split.strip().lower()]
    rationales: tuple[str, ...] = ()
    if fields.rationale:
        value = record.get(fields.rationale)
        items = value if isinstance(value, list) else [value]
        rationales = tuple(r for r in (_text(v, at, fields.rationale) for v in items) if r and r.strip())
    meta: dict[str, Any] = {"record": index}
    if cfg.answer_type == "letter":
        meta["choice_letters"] = choice_letters(cfg.name, question)
    return Example(cfg.name, split, str(index), question, answer.strip(), cfg.answer_type, meta, rationales)


def load_file_examples(cfg: DatasetConfig) -> list[Example]:
    """Examples of a local file; split is "" for records the file does not assign."""
    path = Path(cfg.path)
    if not path.is_file():
        raise DatasetError(f"{path}: dataset file not found")
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise DatasetError(f"{path}: unsupported file type {path.suffix!r}; use {', '.join(_READERS)}")
    return [_example(cfg, str(path), where, i, record, "") for i, (where, record) in enumerate(reader(path))]


def load_hub_examples(cfg: DatasetConfig) -> list[Example]:
    """Examples of a Hugging Face hub dataset; needs `allow_network`. Hub splits map to train/val/test."""
    if not cfg.allow_network:
        raise DatasetError(f"hub dataset {cfg.hub_name!r}: downloading needs dataset.allow_network=true (network access is off by default)")
    import datasets

    loaded = datasets.load_dataset(cfg.hub_name, cfg.hub_config)
    out: list[Example] = []
    for hub_split, rows in loaded.items():
        split = SPLIT_ALIASES.get(hub_split, "")
        for i, record in enumerate(rows):
            out.append(_example(cfg, f"hub {cfg.hub_name}", f"{hub_split} record {i}", len(out), record, split))
    return out
