"""The training loop end to end on a real nano GPT-2: learning, resume, SBC hooks, skip samples, DDP."""

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import GPT2LMHeadModel

from skipthink import batching
from skipthink.checkpoints import latest_checkpoint
from skipthink.config import load_config
from skipthink.perf.train import item_texts, toy_items
from skipthink.student import build_initial_student
from skipthink.training import TrainHooks, train_student

M = 3


def config(*overrides):
    return load_config("smoke", overrides=[
        "student.size=nano", "student.vocab_size=400", "student.n_positions=128", "student.device=cpu",
        f"chunking.num_chunks={M}", "training.max_length=128", "training.batch_size=8", "training.log_every=2",
        "training.epochs=3", "training.lr=0.003", *overrides,
    ])


@pytest.fixture(scope="module")
def data():
    items = toy_items(40, M, seed=1)
    return items[:32], items[32:]


@pytest.fixture(scope="module")
def init_dir(tmp_path_factory, data):
    train, _ = data
    return build_initial_student(config().student, item_texts(train), M, tmp_path_factory.mktemp("init") / "student")


class Recorder:
    def __init__(self, fail_at_val_epoch=None):
        self.logs, self.chunkings, self.progress = [], [], []
        self.fail_at = fail_at_val_epoch

    def on_log(self, rows):
        self.logs += rows
        if self.fail_at is not None and rows[0]["kind"] == "val" and rows[0]["epoch"] == self.fail_at:
            raise KeyboardInterrupt("simulated kill")

    def hooks(self):
        return TrainHooks(on_log=self.on_log, on_chunkings=lambda e, rows: self.chunkings.append((e, rows)),
                          on_progress=lambda done, total, info: self.progress.append((done, total)))


def test_tiny_student_learns_and_saved_model_reloads(tmp_path, data, init_dir):
    train, val = data
    rec = Recorder()
    cfg = config("training.epochs=6")
    result = train_student("ft", train, val, init_dir, tmp_path / "ft", cfg, rec.hooks())
    assert result.steps == 6 * 4 and result.epochs_run == 6 and result.final_dir == tmp_path / "ft" / "final"
    train_rows = [r for r in rec.logs if r["kind"] == "train"]
    val_rows = [r for r in rec.logs if r["kind"] == "val"]
    assert len(train_rows) == 12 and len(val_rows) == 6
    assert train_rows[-1]["loss"] < train_rows[0]["loss"] - 1.0
    assert val_rows[-1]["val_loss"] < val_rows[0]["val_loss"]
    assert result.best_val_loss == min(r["val_loss"] for r in val_rows)
    assert result.best_epoch == min(range(6), key=lambda e: val_rows[e]["val_loss"])
    assert rec.progress[-1] == (24, 24)

    before = GPT2LMHeadModel.from_pretrained(init_dir)
    after = GPT2LMHeadModel.from_pretrained(result.final_dir).eval()
    assert not torch.equal(before.transformer.h[0].attn.c_attn.weight, after.transformer.h[0].attn.c_attn.weight)
    # The final model is the best epoch's files, hard-linked (no second copy of the weights); the
    # checkpoint after the last epoch is the loop state alone (nothing is left to train).
    best = tmp_path / "ft" / "best" / "model.safetensors"
    assert (result.final_dir / "model.safetensors").stat().st_ino == best.stat().st_ino
    last = latest_checkpoint(tmp_path / "ft")
    assert last.name == "epoch-0005" and not (last / "trainer.pt").exists()
    assert json.loads((last / "state.json").read_text())["finished"] is True
    # Called again on the finished run: it resumes to the end, trains nothing, gives the same model.
    again = train_student("ft", train, val, init_dir, tmp_path / "ft", cfg)
    assert again.steps == result.steps and again.safetensors_sha256 == result.safetensors_sha256
    import hashlib

    assert result.safetensors_sha256 == hashlib.sha256((result.final_dir / "model.safetensors").read_bytes()).hexdigest()
    assert (result.final_dir / "tokenizer.json").is_file()


def test_killed_run_resumes_to_the_same_weights(tmp_path, data, init_dir):
    train, val = data
    # Dropout and random segment sampling make the comparison sensitive to RNG and data-order restore.
    cfg = config("student.dropout=0.1", "training.segment_sampling=random", "chunking.eta=0.0", "chunking.max_rounds=1", "chunking.refresh_every=2")
    init = build_initial_student(cfg.student, item_texts(train), M, tmp_path / "init")
    whole = train_student("cwt-sbc", train, val, init, tmp_path / "whole", cfg)

    killed = Recorder(fail_at_val_epoch=1)
    with pytest.raises(KeyboardInterrupt):
        train_student("cwt-sbc", train, val, init, tmp_path / "resumed", cfg, killed.hooks())
    assert latest_checkpoint(tmp_path / "resumed").name == "epoch-0000"  # epoch 1 died before its checkpoint
    resumed = train_student("cwt-sbc", train, val, init, tmp_path / "resumed", cfg)

    assert resumed.steps == whole.steps == 3 * 4
    assert resumed.best_epoch == whole.best_epoch and resumed.best_val_loss == whole.best_val_loss
    assert resumed.final_boundaries == whole.final_boundaries
    a, b = load_file(whole.final_dir / "model.safetensors"), load_file(resumed.final_dir / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.safetensors_sha256 == whole.safetensors_sha256

    # A checkpoint of another run is discarded: the run starts over and trains all its epochs.
    other = config("training.lr=0.001", "training.segment_sampling=random", "chunking.eta=0.0", "chunking.max_rounds=1", "chunking.refresh_every=2")
    fresh = train_student("cwt-sbc", train, val, init, tmp_path / "resumed", other)
    assert fresh.steps == whole.steps and fresh.safetensors_sha256 != whole.safetensors_sha256


def test_unreadable_checkpoint_starts_over(tmp_path, data, init_dir):
    train, val = data
    cfg = config("training.epochs=2")
    killed = Recorder(fail_at_val_epoch=1)
    with pytest.raises(KeyboardInterrupt):
        train_student("ft", train, val, init_dir, tmp_path / "run", cfg, killed.hooks())
    ckpt = latest_checkpoint(tmp_path / "run")
    (ckpt / "trainer.pt").write_bytes((ckpt / "trainer.pt").read_bytes()[:100])  # a kill mid-write of a copied file
    again = train_student("ft", train, val, init_dir, tmp_path / "run", cfg)
    whole = train_student("ft", train, val, init_dir, tmp_path / "whole", cfg)
    assert again.steps == whole.steps == 2 * 4 and again.safetensors_sha256 == whole.safetensors_sha256


def test_a_kill_while_replacing_best_leaves_a_whole_copy(tmp_path, data, init_dir):
    train, val = data
    cfg = config("training.epochs=1")
    result = train_student("ft", train, val, init_dir, tmp_path / "run", cfg)
    out = tmp_path / "run"
    (out / "best").rename(out / "best.old")  # killed after moving best aside, before the rename
    again = train_student("ft", train, val, init_dir, out, cfg)
    assert again.safetensors_sha256 == result.safetensors_sha256 and (out / "best" / "model.safetensors").is_file()


def test_sbc_searches_before_every_epoch_after_the_first_train_and_val(tmp_path, data, init_dir):
    train, val = data
    rec = Recorder()
    cfg = config("training.epochs=3", "chunking.eta=0.0", "chunking.max_rounds=2", "chunking.refresh_every=1")
    result = train_student("cwt-sbc", train[:16], val, init_dir, tmp_path / "sbc", cfg, rec.hooks())
    # Epoch 0 trains on average chunking; the search runs before epochs 1 and 2.
    assert [e for e, _ in rec.chunkings] == [1, 2]
    rows = rec.chunkings[0][1]
    assert len(rows) == 16 + len(val)  # validation items are re-chunked too
    assert {r["sample_id"] for r in rows} == {it.sample_id for it in train[:16] + val}
    assert set(rows[0]) == {"sample_id", "completion_index", "epoch", "boundaries", "score", "moves"}
    assert any(r["moves"] > 0 for r in rows)
    if result.best_epoch == 0:
        expected = {it.key: it.chunk_boundaries(M) for it in train[:16] + val}
    else:
        expected = {(r["sample_id"], r["completion_index"]): tuple(r["boundaries"]) for r in rec.chunkings[result.best_epoch - 1][1]}
    assert result.final_boundaries == expected
    assert result.sbc_seconds > 0


def test_stt_mixes_skip_samples_into_an_epoch_of_n_items(tmp_path, data, init_dir):
    train, val = data
    mask = [False, True, False]
    items = [it.with_skip_alternative(mask) for it in train[:24]] + train[24:]  # 8 items failed the baseline
    val_items = [it.with_skip_alternative(mask) for it in val]
    cfg = config("training.epochs=2", "skip.mix=0.5")
    drawn = [batching.epoch_items(items, 0.5, cfg.training.seed, e) for e in range(2)]
    assert all(len(d) == len(items) for d in drawn)  # an epoch has as many samples as items, like CWT-SBC
    skipped = [sum(d.skip_mask is not None for d in ds) for ds in drawn]
    assert all(0 < k < 24 for k in skipped) and all(d.skip_mask is None for ds in drawn for d in ds[24:])
    segment_counts = [[len(batching.item_segments("stt", d, M)) for d in ds] for ds in drawn]
    expected_steps = sum(batching.steps_per_epoch(c, "expand", 8, 1) for c in segment_counts)
    rec = Recorder()
    result = train_student("stt", items, val_items, init_dir, tmp_path / "stt", cfg, rec.hooks())
    assert result.steps == expected_steps and result.final_boundaries is None
    assert result.best_val_loss is not None and result.target_tokens > 0
    assert result.budget == {"mode": "epochs", "epochs": 2, "target_tokens_per_epoch": result.budget["target_tokens_per_epoch"], "token_budget": None}
    assert all(r["loss"] > 0 for r in rec.logs)
    # No skip samples mixed in (mix 0): a plain CWT epoch of 4 segments per item.
    plain = train_student("stt", items, val_items, init_dir, tmp_path / "stt0", config("training.epochs=1", "skip.mix=0"))
    assert plain.steps == 4 * 4


def test_expand_gives_cwt_about_fts_target_tokens_and_budget_tokens_matches_them(tmp_path, data, init_dir):
    train, val = data
    ft = train_student("ft", train, val, init_dir, tmp_path / "ft", config("training.epochs=1"))
    cwt = train_student("cwt-ac", train, val, init_dir, tmp_path / "cwt", config("training.epochs=1"))
    # Every chunk of every item is trained each epoch: about FT's target tokens (markers differ).
    assert 0.8 < cwt.target_tokens / ft.target_tokens < 1.3
    assert cwt.steps == 4 * ft.steps  # M+1 segments, one per item per batch
    # One random segment per item per epoch: a quarter of the supervision, so budget=tokens trains ~4x the epochs.
    rnd = train_student("cwt-ac", train, val, init_dir, tmp_path / "rnd", config("training.epochs=1", "training.segment_sampling=random", "training.budget=tokens"))
    assert rnd.budget["token_budget"] == ft.target_tokens
    assert rnd.budget["epochs"] == round(ft.target_tokens / rnd.budget["target_tokens_per_epoch"]) and 3 <= rnd.epochs_run <= 5
    assert abs(rnd.target_tokens - ft.target_tokens) < 0.35 * ft.target_tokens


def test_each_batch_holds_one_stage_per_item_and_the_order_is_seeded():
    stage_counts = [4, 4, 2, 1, 4, 3]
    for sampling in ("random", "cycle", "expand"):
        rounds = batching.epoch_units(stage_counts, sampling, seed=0, epoch=0)
        for units in rounds:
            items = [i for i, _ in units]
            assert len(items) == len(set(items))
            assert all(0 <= j < stage_counts[i] for i, j in units)
        assert rounds == batching.epoch_units(stage_counts, sampling, seed=0, epoch=0)
    expand = batching.epoch_units(stage_counts, "expand", seed=0, epoch=0)
    assert sorted(u for r in expand for u in r) == [(i, j) for i, k in enumerate(stage_counts) for j in range(k)]
    seen = {(i, j) for e in range(4) for i, j in batching.epoch_units(stage_counts, "cycle", 0, e)[0]}
    assert seen == {(i, j) for i, k in enumerate(stage_counts) for j in range(k)}
    assert batching.epoch_units(stage_counts, "random", 0, 0) != batching.epoch_units(stage_counts, "random", 0, 1)


def test_batches_are_length_bucketed_and_padded_per_batch():
    import random

    lengths = [random.Random(k).randrange(5, 100) for k in range(256)]
    batches = batching.bucket_batches(list(range(256)), lengths, 16, random.Random(0))
    assert sorted(u for b in batches for u in b) == list(range(256))
    spread = sum(max(lengths[u] for u in b) - min(lengths[u] for u in b) for b in batches) / len(batches)
    assert spread < 15  # random batches would spread ~85
    b = batching.collate([([1, 2, 3], [-100, 2, 3]), ([4], [4])], pad_id=0)
    assert b.input_ids.tolist() == [[1, 2, 3], [4, 0, 0]]
    assert b.labels.tolist() == [[-100, 2, 3], [4, -100, -100]]
    assert b.n_tokens == 4 and b.n_target_tokens == 3


def test_two_process_ddp_with_torchrun(tmp_path, data, init_dir):
    train, val = data
    rec = Recorder()
    cfg = config("training.epochs=2", "training.ddp_processes=2")
    result = train_student("cwt-ac", train, val, init_dir, tmp_path / "ddp", cfg, rec.hooks())
    # 32 items x 4 segments over 2 processes at batch 8: 4 rounds of 2 steps per epoch on each process.
    assert result.steps == 2 * 8 and result.epochs_run == 2
    assert (result.final_dir / "model.safetensors").is_file()
    assert [r["epoch"] for r in rec.logs if r["kind"] == "val"] == [0, 1]
    assert all(r["val_loss"] > 0 for r in rec.logs if r["kind"] == "val")
    job = json.loads((tmp_path / "ddp" / "ddp" / "result.json").read_text())
    assert job["safetensors_sha256"] == result.safetensors_sha256
