"""Fine-tune-CoT and file loaders, splits and caps, bad input, and `skipthink data show`."""

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from flows.cli import app
from skipthink.datasets import DatasetError, load_examples, load_recorded_completions
from skipthink.datasets.finetune_cot import completion_file
from skipthink.config import DatasetConfig

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="shared data folder absent")
RECORDS = [{"q": f"What is {i} + {i}?", "a": str(2 * i), "why": f"{i} + {i} = {2 * i}."} for i in range(20)]


def ftc_layout(root: Path, data: dict, split: dict) -> Path:
    d = root / "saved/completion_data/B_text-davinci-002__C_zs_cot"
    d.mkdir(parents=True)
    (d / "D_coin_flip.json").write_text(json.dumps({"metadata": {}, "data": data}))
    (root / "data/split").mkdir(parents=True)
    (root / "data/split/coin_flip__default.json").write_text(json.dumps(split))
    return root


def completion(i, answer="yes", question="A coin is heads up. Is it?"):
    return {"sample_index": i, "completion_index": 0, "question": question, "answer": answer, "reasoning_prompt": "Q: …",
            "reasoning_completion": f" step {i}.", "reasoning_finish_reason": "stop", "prompt": "…", "completion": " Yes."}


@needs_data
def test_finetune_cot_real_splits_and_completions():
    cfg = DatasetConfig(name="multiarith", source="finetune_cot", data_dir=DATA, val_fraction=0.1)
    examples = load_examples(cfg)
    counts = {s: sum(e.split == s for e in examples) for s in ("train", "val", "test")}
    assert counts == {"train": 378, "val": 42, "test": 180}
    split = json.loads((DATA / "reasoning-teacher/data/split/multiarith__default.json").read_text())
    assert sorted(int(e.sample_id) for e in examples if e.split == "test") == split["test"]
    first = next(e for e in examples if e.sample_id == "0")
    assert first.answer == "39" and first.answer_type == "number" and first.rationales[0].startswith(" \n\nDebby")
    recorded = load_recorded_completions(cfg)
    assert len(recorded) == 600 and sum(map(len, recorded.values())) == 792
    r = recorded["0"][0]
    assert (r.finish_reason, r.answer_completion) == ("stop", " 39.") and r.reasoning_prompt.endswith("Let's think step by step.")
    tracking = load_examples(DatasetConfig(name="tracking_shuffled_objects", source="finetune_cot", data_dir=DATA, max_train=50, max_test=20))
    assert [sum(e.split == s for e in tracking) for s in ("train", "val", "test")] == [45, 5, 20]
    assert all(e.meta["choice_letters"] == "ABC" for e in tracking)


def test_finetune_cot_accepts_root_or_parent(tmp_path):
    data = {str(i): [completion(i)] for i in range(4)}
    ftc_layout(tmp_path / "release", data, {"train": [0, 1, 2], "test": [3]})
    for data_dir in (tmp_path / "release", tmp_path):
        examples = load_examples(DatasetConfig(name="coin_flip", source="finetune_cot", data_dir=data_dir, val_fraction=0.0))
        assert [(e.split, e.sample_id) for e in examples] == [("train", "0"), ("train", "1"), ("train", "2"), ("test", "3")]


def write(path: Path, records) -> Path:
    if path.suffix == ".json":
        path.write_text(json.dumps({"examples": records}))
    elif path.suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    elif path.suffix == ".csv":
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(records[0]))
            w.writeheader()
            w.writerows(records)
    else:
        pq.write_table(pa.Table.from_pylist(records), path)
    return path


def file_cfg(path, **kw):
    return DatasetConfig(name="sums", source="file", path=path, answer_type="number", fields={"question": "q", "answer": "a", "rationale": "why"}, **kw)


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".csv", ".parquet"])
def test_file_formats_load_the_same_examples(tmp_path, suffix):
    examples = load_examples(file_cfg(write(tmp_path / f"d{suffix}", RECORDS), test_fraction=0.25, val_fraction=0.2))
    assert [sum(e.split == s for e in examples) for s in ("train", "val", "test")] == [12, 3, 5]
    by_id = {e.sample_id: e for e in examples}
    assert sorted(by_id, key=int) == [str(i) for i in range(20)]
    assert (by_id["7"].question, by_id["7"].answer, by_id["7"].rationales) == ("What is 7 + 7?", "14", ("7 + 7 = 14.",))
    recorded = load_recorded_completions(file_cfg(tmp_path / f"d{suffix}"))
    assert recorded["7"][0].rationale == "7 + 7 = 14."


def test_file_split_field_is_respected(tmp_path):
    records = [dict(r, part="test" if i < 4 else "train") for i, r in enumerate(RECORDS)]
    cfg = file_cfg(write(tmp_path / "d.jsonl", records), val_fraction=0.0)
    cfg.fields.split = "part"
    examples = load_examples(cfg)
    assert sorted(int(e.sample_id) for e in examples if e.split == "test") == [0, 1, 2, 3]


BAD = [
    ("d.jsonl", '{"q": "What is 1 + 1?", "a": "2"}\n{"q": "broken", \n', r"d\.jsonl: line 2 is not valid JSON"),
    ("d.jsonl", '{"q": "What is 1 + 1?", "a": "2"}\n{"q": "What is 2 + 2?"}\n', r"d\.jsonl: line 2: missing or empty answer field 'a'"),
    ("d.json", json.dumps([{"q": "What is 1 + 1?", "a": "2"}, {"q": "  ", "a": "4"}]), r"d\.json: record 1: missing or empty question field 'q'"),
    ("d.csv", "q,a\nWhat is 1 + 1?,2\nWhat is 2 + 2?,\n", r"d\.csv: line 3: missing or empty answer field 'a'"),
    ("d.json", "[{\"q\": ", r"d\.json: not valid JSON at line 1"),
]


@pytest.mark.parametrize("filename, text, message", BAD)
def test_bad_file_input_names_file_and_record(tmp_path, filename, text, message):
    (tmp_path / filename).write_text(text)
    with pytest.raises(DatasetError, match=message):
        load_examples(file_cfg(tmp_path / filename))


def test_missing_paths_unknown_names_and_hub_without_network(tmp_path):
    with pytest.raises(DatasetError, match=r"nowhere\.jsonl: dataset file not found"):
        load_examples(file_cfg(tmp_path / "nowhere.jsonl"))
    with pytest.raises(DatasetError, match="Fine-tune-CoT data directory not found"):
        load_examples(DatasetConfig(name="coin_flip", source="finetune_cot", data_dir=tmp_path / "absent"))
    ftc_layout(tmp_path / "rel", {"0": [completion(0)]}, {"train": [0], "test": [0]})
    with pytest.raises(DatasetError, match="D_svamp.json"):
        completion_file(tmp_path / "rel", "svamp")
    with pytest.raises(ValidationError, match="unknown synthetic dataset 'nope'"):
        DatasetConfig(name="nope")
    hub = DatasetConfig(name="gsm", source="hub", hub_name="openai/gsm8k", answer_type="number")
    with pytest.raises(DatasetError, match="allow_network"):
        load_examples(hub)


def test_bad_finetune_cot_records(tmp_path):
    ftc_layout(tmp_path, {"0": [completion(0)], "1": [completion(1, answer="")]}, {"train": [0], "test": [1]})
    with pytest.raises(DatasetError, match=r"D_coin_flip\.json: sample 1, completion 0: missing or empty 'answer'"):
        load_examples(DatasetConfig(name="coin_flip", source="finetune_cot", data_dir=tmp_path))


def test_cli_show_counts_and_example(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["data", "show", "coin_flip"])
    assert result.exit_code == 0, result.output
    assert "train 360, val 40, test 200" in result.output and "A coin is heads up." in result.output
    path = write(tmp_path / "d.jsonl", [{"question": r["q"], "answer": r["a"]} for r in RECORDS])
    result = runner.invoke(app, ["data", "show", "sums", "--path", str(path), "--answer-type", "number"])
    assert result.exit_code == 0, result.output
    assert "train 13, val 1, test 6" in result.output
    result = runner.invoke(app, ["data", "show", "sums", "--path", str(tmp_path / "missing.csv"), "--answer-type", "number"])
    assert result.exit_code == 1 and "missing.csv: dataset file not found" in result.output


# ---- encodings, types and size (issue 13, item 12) -----------------------------------------
@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".json"])
def test_non_utf8_file_names_the_byte_offset(tmp_path, suffix):
    path = write(tmp_path / f"d{suffix}", RECORDS[:3])
    data = path.read_bytes()
    at = data.index(b"What is 1")
    path.write_bytes(data[:at] + "Wh\xe4t".encode("latin-1") + data[at + 4:])  # a Latin-1 ä
    with pytest.raises(DatasetError, match=rf"d\{suffix}: not UTF-8 text: byte 0xe4 at byte offset {at + 2} "):
        load_examples(file_cfg(path))


def test_finetune_cot_non_utf8_names_the_file_and_offset(tmp_path):
    ftc_layout(tmp_path, {"0": [completion(0)]}, {"train": [0], "test": [0]})
    split = tmp_path / "data/split/coin_flip__default.json"
    split.write_bytes(b'{"train": [0], "test": [0]}\xff')
    with pytest.raises(DatasetError, match=r"coin_flip__default\.json: not UTF-8 text: byte 0xff at byte offset 27"):
        load_examples(DatasetConfig(name="coin_flip", source="finetune_cot", data_dir=tmp_path))
    split.write_text('{"train": [true], "test": [0]}')
    with pytest.raises(DatasetError, match=r"train holds True, not a sample index"):
        load_examples(DatasetConfig(name="coin_flip", source="finetune_cot", data_dir=tmp_path))


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".json"])
def test_byte_order_mark_is_ignored(tmp_path, suffix):
    path = write(tmp_path / f"d{suffix}", RECORDS)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # what Excel's "CSV UTF-8" writes
    examples = load_examples(file_cfg(path, val_fraction=0.0))
    assert sorted(e.question for e in examples)[:2] == ["What is 0 + 0?", "What is 1 + 1?"]  # the first column, "q"


WRONG_TYPES = [
    ({"q": ["What is", "1 + 1?"], "a": "2"}, r"line 2: field 'q' holds a list \(\['What is', '1 \+ 1\?'\]\); expected text"),
    ({"q": "What is 1 + 1?", "a": {"value": 2}}, r"line 2: field 'a' holds a dict"),
    ({"q": "Is it heads?", "a": True}, r"line 2: field 'a' holds a bool \(True\)"),
    ({"q": "What is 1 + 1?", "a": "2", "why": ["1 + 1 = 2.", {"step": 1}]}, r"line 2: field 'why' holds a dict"),
]


@pytest.mark.parametrize("record, message", WRONG_TYPES)
def test_non_text_values_are_errors_naming_the_record(tmp_path, record, message):
    path = write(tmp_path / "d.jsonl", [RECORDS[0], record])
    with pytest.raises(DatasetError, match=r"d\.jsonl: " + message):
        load_examples(file_cfg(path))


def test_numbers_are_text_and_csv_column_counts_are_checked(tmp_path):
    path = write(tmp_path / "d.jsonl", [{"q": "What is 1 + 1?", "a": 2}, {"q": "What is 1.5 + 1?", "a": 2.5}])
    assert sorted(e.answer for e in load_examples(file_cfg(path, val_fraction=0.0, test_fraction=0.5))) == ["2", "2.5"]
    (tmp_path / "d.csv").write_text('q,a\n"What is\n1 + 1?",2\nWhat is 2 + 2?,4,extra\n')
    with pytest.raises(DatasetError, match=r"d\.csv: line 4: 3 columns, the header has 2"):
        load_examples(file_cfg(tmp_path / "d.csv"))


def test_large_jsonl_streams(tmp_path):
    import tracemalloc

    from skipthink.datasets.file import _READERS

    path = tmp_path / "big.jsonl"
    with path.open("w") as f:
        for i in range(20_000):
            f.write(json.dumps({"q": f"What is {i} + {i}? " + "x" * 500, "a": str(2 * i)}) + "\n")
    tracemalloc.start()
    n = sum(1 for _ in _READERS[".jsonl"](path))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n == 20_000 and path.stat().st_size > 10_000_000 and peak < 1_000_000  # one line at a time, not the 10 MB file
