"""File contents enter stage fingerprints; paths are resolved (issue 13, item 2)."""

import json
import os
import time


from skipthink.config import load_config
from skipthink.inputs import CACHE_FILE, HashCache, content_fingerprint, file_inputs
from tasks.stages import REGISTRY, fingerprint, plan


def _write_jsonl(path, answers):
    path.write_text("".join(json.dumps({"question": f"What is {a} - 1?", "answer": str(a)}) + "\n" for a in answers))
    return path


def _file_cfg(path):
    return load_config("smoke", overrides=["dataset.source=file", f"dataset.path={path}", "dataset.name=sums", "dataset.answer_type=number"])


def test_editing_a_data_file_changes_the_data_stage(tmp_path, home):
    path = _write_jsonl(tmp_path / "d.jsonl", [1, 2, 3])
    before = plan(_file_cfg(path))
    stat = path.stat()
    _write_jsonl(path, [1, 2, 4])  # same size, new content
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a later write, even on coarse clocks
    after = plan(_file_cfg(path))
    assert path.stat().st_size == stat.st_size
    assert before.fp("data") != after.fp("data") and before.fp("report") != after.fp("report")
    assert plan(_file_cfg(path)).fp("data") == after.fp("data")  # stable while the file is


def test_a_relative_path_means_the_file_not_the_string(tmp_path, home, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, answers in ((a, [1, 2]), (b, [3, 4])):
        folder.mkdir()
        _write_jsonl(folder / "d.jsonl", answers)
    monkeypatch.chdir(a)
    from_a = plan(_file_cfg("d.jsonl")).fp("data")
    monkeypatch.chdir(b)
    assert plan(_file_cfg("../a/d.jsonl")).fp("data") == from_a  # the same file from another cwd
    assert plan(_file_cfg("d.jsonl")).fp("data") != from_a  # the same string, another file
    assert plan(_file_cfg(a / "d.jsonl")).fp("data") == from_a
    entry = file_inputs(_file_cfg("../a/d.jsonl"))["data"]["path"]
    assert entry == {"path": str((a / "d.jsonl").resolve()), "content": content_fingerprint(a / "d.jsonl")}


def test_stages_that_read_no_files_keep_their_fingerprints(home):
    cfg = load_config("smoke")
    assert file_inputs(cfg) == {}
    assert plan(cfg).fp("data") == fingerprint(REGISTRY["data"], cfg.dataset.model_dump(mode="json"), {})


def _ftc_tree(root):
    for name in ("coin_flip", "svamp"):
        d = root / "saved/completion_data/B_text-davinci-002__C_zs_cot"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"D_{name}.json").write_text(json.dumps({"data": {"0": [{"question": "Q", "answer": "yes", "reasoning_completion": "r"}]}}))
        (root / "data/split").mkdir(parents=True, exist_ok=True)
        (root / f"data/split/{name}__default.json").write_text(json.dumps({"train": [0], "test": [0]}))


def _touch_append(path, text):
    with open(path, "a") as f:
        f.write(text)


def test_finetune_cot_hashes_the_files_the_loader_reads(tmp_path, home):
    _ftc_tree(tmp_path / "ftc")
    cfg = load_config("smoke", overrides=["dataset.source=finetune_cot", "dataset.name=coin_flip", f"dataset.data_dir={tmp_path / 'ftc'}"])
    entry = file_inputs(cfg)["data"]["data_dir"]
    assert sorted(entry["files"]) == ["data/split/coin_flip__default.json", "saved/completion_data/B_text-davinci-002__C_zs_cot/D_coin_flip.json"]
    fp = plan(cfg).fp("data")
    _touch_append(tmp_path / "ftc/data/split/svamp__default.json", " ")  # another dataset's file
    assert plan(cfg).fp("data") == fp
    _touch_append(tmp_path / "ftc/data/split/coin_flip__default.json", " ")
    assert plan(cfg).fp("data") != fp


def test_replay_teacher_real_test_split_and_local_student_are_hashed(tmp_path, home):
    _ftc_tree(tmp_path / "ftc")
    student = tmp_path / "student"
    (student / "sub").mkdir(parents=True)
    (student / "config.json").write_text("{}")
    (student / "sub/weights.bin").write_bytes(b"\x00" * 10)
    cfg = load_config("smoke", overrides=[
        "teacher.server.backend=replay", f"teacher.server.data_dir={tmp_path / 'ftc'}", "dataset.name=coin_flip",
        f"evaluation.real_data_dir={tmp_path / 'ftc'}", "student.kind=pretrained", f"student.name_or_path={student}",
    ])
    inputs = file_inputs(cfg)
    assert len(inputs["teacher"]["server"]["data_dir"]["files"]) == 2  # replay loads every D_*.json
    assert sorted(inputs["evaluate"]["evaluation"]["real_data_dir"]["files"])[0] == "data/split/coin_flip__default.json"
    assert sorted(inputs["student"]["name_or_path"]["files"]) == ["config.json", "sub/weights.bin"]
    before = plan(cfg)
    (student / "sub/weights.bin").write_bytes(b"\x01" * 11)
    after = plan(cfg)
    assert before.fp("student") != after.fp("student") and before.fp("teacher") == after.fp("teacher")
    assert before.fp("evaluate:ft") != after.fp("evaluate:ft")  # downstream of the student


def test_hash_cache_persists_and_follows_mtime(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("one")
    cache_file = tmp_path / CACHE_FILE
    cache = HashCache(cache_file)
    first = cache.fingerprint(path)
    cache.save()
    saved = json.loads(cache_file.read_text())
    assert list(saved.values()) == [first] and first.startswith("3:")
    assert HashCache(cache_file).fingerprint(path) == first
    time.sleep(0.01)
    path.write_text("two")
    assert HashCache(cache_file).fingerprint(path) != first


def test_shared_data_fingerprint_is_quick(shared_data, home):
    cfg = load_config("smoke", overrides=["dataset.source=finetune_cot", "dataset.name=svamp", f"dataset.data_dir={shared_data}"])
    t0 = time.perf_counter()
    entry = file_inputs(cfg, cache=HashCache())["data"]["data_dir"]
    cold = time.perf_counter() - t0
    assert len(entry["files"]) == 2 and all(":" in v for v in entry["files"].values())
    t0 = time.perf_counter()
    file_inputs(cfg, cache=HashCache())
    assert time.perf_counter() - t0 < max(cold, 0.05)  # in-memory cache: no re-reading
