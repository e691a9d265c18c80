"""Fine-tune-CoT's released data: unified questions, default splits, recorded teacher completions.

Layout (itsnamgyu/reasoning-teacher): completion files
`saved/completion_data/B_<model>__C_<key>/D_<dataset>.json` and split files
`data/split/<dataset>__default.json`. `data_dir` is such a root, or a directory whose immediate
subdirectories hold those paths (the shared data folder keeps them in two sibling copies).
The completion file doubles as the dataset: every sample carries its question and gold answer.
"""

from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import Any

from skipthink.datasets.base import DatasetError, Example, RecordedCompletion
from skipthink.datasets.scoring import answer_type_for, choice_letters, extract_answer, is_correct

PREFERRED_COMPLETIONS = "B_text-davinci-002__C_zs_cot"


def _roots(data_dir: Path) -> list[Path]:
    if not data_dir.is_dir():
        raise DatasetError(f"{data_dir}: Fine-tune-CoT data directory not found")
    return [data_dir] + sorted(p for p in data_dir.iterdir() if p.is_dir())


def completion_file(data_dir: Path, dataset: str) -> Path:
    """The D_<dataset>.json file (text-davinci-002 zero-shot-CoT when several exist)."""
    found = sorted(f for root in _roots(data_dir) for f in root.glob(f"saved/completion_data/B_*__C_*/D_{dataset}.json"))
    if not found:
        raise DatasetError(f"{data_dir}: no saved/completion_data/B_*__C_*/D_{dataset}.json here or one level down")
    preferred = [f for f in found if f.parent.name == PREFERRED_COMPLETIONS]
    return (preferred or found)[0]


def split_file(data_dir: Path, dataset: str) -> Path:
    for root in _roots(data_dir):
        path = root / "data" / "split" / f"{dataset}__default.json"
        if path.is_file():
            return path
    raise DatasetError(f"{data_dir}: no data/split/{dataset}__default.json here or one level down")


def decode_utf8(path: Path, data: bytes, offset: int = 0) -> str:
    """UTF-8 text (a leading byte-order mark dropped); an error names the file and byte offset."""
    if offset == 0 and data.startswith(codecs.BOM_UTF8):
        data, offset = data[len(codecs.BOM_UTF8):], len(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path}: not UTF-8 text: byte 0x{data[e.start]:02x} at byte offset {offset + e.start} ({e.reason})") from None


def read_json(path: Path) -> Any:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    try:
        return json.loads(decode_utf8(path, raw))
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}: not valid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None


def _completion_records(path: Path) -> dict[int, list[dict]]:
    raw = read_json(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("data"), dict):
        raise DatasetError(f"{path}: expected an object with a 'data' mapping of sample_index -> completions")
    out: dict[int, list[dict]] = {}
    for key, completions in raw["data"].items():
        where = f"{path}: sample {key}"
        if not key.isdigit() or not isinstance(completions, list) or not completions:
            raise DatasetError(f"{where}: expected a numeric key and a non-empty list of completions")
        for index, c in enumerate(completions):
            if not isinstance(c, dict):
                raise DatasetError(f"{where}, completion {index}: not an object")
            for name in ("question", "answer", "reasoning_completion"):
                if not isinstance(c.get(name), str) or (name != "reasoning_completion" and not c[name].strip()):
                    raise DatasetError(f"{where}, completion {index}: missing or empty {name!r}")
        out[int(key)] = completions
    return out


def _splits(path: Path, available: set[int]) -> dict[str, list[int]]:
    raw = read_json(path)
    if not isinstance(raw, dict) or not all(isinstance(raw.get(s), list) for s in ("train", "test")):
        raise DatasetError(f"{path}: expected {{'train': [...], 'test': [...]}}")
    for split in ("train", "test"):
        # bool is an int in Python: `true` would silently mean sample 1.
        bad = [i for i in raw[split] if not isinstance(i, int) or isinstance(i, bool)]
        if bad:
            raise DatasetError(f"{path}: {split} holds {bad[0]!r}, not a sample index ({len(bad)} such entries)")
        missing = [i for i in raw[split] if i not in available]
        if missing:
            raise DatasetError(f"{path}: {split} index {missing[0]} has no record in the completion file ({len(missing)} missing)")
    return {"train": list(raw["train"]), "test": list(raw["test"])}


def load_split_examples(data_dir: Path, dataset: str) -> dict[str, list[Example]]:
    """Train and test examples (sample_id = str(sample_index)), rationales = every recorded completion."""
    records = _completion_records(completion_file(data_dir, dataset))
    splits = _splits(split_file(data_dir, dataset), set(records))
    answer_type = answer_type_for(dataset)
    out: dict[str, list[Example]] = {}
    for split, indices in splits.items():
        examples = []
        for i in indices:
            first = records[i][0]
            meta: dict[str, Any] = {"sample_index": i}
            if answer_type == "letter":
                meta["choice_letters"] = choice_letters(dataset, first["question"])
            examples.append(Example(dataset, split, str(i), first["question"], first["answer"], answer_type, meta,
                                    tuple(c["reasoning_completion"] for c in records[i])))
        out[split] = examples
    return out


def load_recorded_completions(data_dir: Path, dataset: str) -> dict[str, list[RecordedCompletion]]:
    """Every recorded completion per sample_id, in completion order."""
    records = _completion_records(completion_file(data_dir, dataset))
    return {
        str(i): [
            RecordedCompletion(
                sample_id=str(i),
                completion_index=int(c.get("completion_index", k)),
                rationale=c["reasoning_completion"],
                finish_reason=c.get("reasoning_finish_reason"),
                answer_completion=c.get("completion"),
                reasoning_prompt=c.get("reasoning_prompt"),
                answer_prompt=c.get("prompt"),
            )
            for k, c in enumerate(completions)
        ]
        for i, completions in sorted(records.items())
    }


def teacher_accuracy(data_dir: Path, dataset: str, all_completions: bool = False) -> tuple[int, float]:
    """(completions scored, accuracy in percent) of the recorded second-step answers against gold.

    Scores every sample of the completion file, train and test alike, as Fine-tune-CoT's
    published teacher accuracies do; completion 0 only unless `all_completions`.
    """
    answer_type = answer_type_for(dataset)
    letters = choice_letters(dataset)
    n = correct = 0
    for completions in _completion_records(completion_file(data_dir, dataset)).values():
        for c in completions if all_completions else completions[:1]:
            predicted = extract_answer(c.get("completion") or "", answer_type, letters=letters)
            n += 1
            correct += is_correct(predicted, c["answer"], answer_type)
    return n, 100.0 * correct / n
