"""Core tokens and the over-smoothing analysis: the text rule, the per-epoch statistics of a real
training run, the aggregation over seeds and the `skipthink results mechanism` command."""

import json

import pytest
from typer.testing import CliRunner

from skipthink.core_tokens import core_mask, token_group_stats
from skipthink.mechanism import against_ft, over_training
from skipthink.training import TrainHooks, train_student
from tests.test_training import config, data, init_dir  # noqa: F401 (fixtures)


def test_core_spans_cover_numbers_names_quotes_and_answers_across_token_pieces():
    tokens = [" Al", "ice", " flips", " the", " coin", ",", " so", " it", " is", " tails", " up", ".", " 1", "2", " +", " 3", " =", " 15",
              ' "', "Ro", "sa", '"', " ends", " with", ' "', "a", '".', " So", " (", "B", ")", " [2]", " no"]
    mask = dict(zip(range(len(tokens)), core_mask(tokens)))
    core = [t for i, t in enumerate(tokens) if mask[i]]
    # "So" is capitalised: a sentence start counts as a name (the rule is on the text, not the grammar).
    assert core == [" Al", "ice", " tails", " 1", "2", " 3", " 15", ' "', "Ro", "sa", '"', ' "', "a", '".', " So", " (", "B", ")", " no"]
    assert not any(mask[i] for i, t in enumerate(tokens) if t in (" flips", " the", " coin", " +", " =", " [2]"))


def test_a_training_run_records_core_and_rest_statistics_every_epoch(tmp_path, data, init_dir):  # noqa: F811
    train, val = data
    rows = []
    hooks = TrainHooks(on_epoch=lambda epoch, model, tok, batches: rows.append((epoch, token_group_stats(model, tok, batches))))
    train_student("ft", train, val, init_dir, tmp_path / "ft", config("training.epochs=3"), hooks)
    assert [e for e, _ in rows] == [0, 1, 2]
    first, last = rows[0][1], rows[-1][1]
    assert first.n_core > 20 and first.n_rest > first.n_core  # names and states are a minority of the targets
    assert (first.n_core, first.n_rest) == (last.n_core, last.n_rest)  # the same validation targets every epoch
    assert last.core_loss < first.core_loss and last.rest_loss < first.rest_loss
    assert 0.0 < last.core_confidence < 1.0 and last.rest_confidence > first.rest_confidence


def _summary(method, seed, core, rest):
    return {"method": method, "dataset": "coin_flip", "seed": seed,
            "core_tokens": [{"epoch": e, "core_loss": c, "rest_loss": r, "core_confidence": 0.5, "rest_confidence": 0.9, "n_core": 10, "n_rest": 40}
                            for e, (c, r) in enumerate(zip(core, rest))]}


def test_cwt_paired_with_ft_at_the_last_common_epoch():
    summaries = [_summary("ft", s, [2.0, 1.0 + 0.1 * s], [1.0, 0.5]) for s in range(3)]
    summaries += [_summary("cwt-ac", s, [2.0, 0.6 + 0.1 * s], [1.0, 0.5]) for s in range(3)]
    curves = over_training(summaries)
    assert [r["epoch"] for r in curves["coin_flip"]["ft"]] == [0, 1] and curves["coin_flip"]["ft"][1]["core_loss"]["mean"] == 1.1
    rows = {r["figure"]: r for r in against_ft(summaries)}
    assert rows["core_loss"]["epoch"] == 1 and rows["core_loss"]["delta_mean"] == pytest.approx(-0.4)
    assert rows["core_loss"]["ci95"] == [pytest.approx(-0.4), pytest.approx(-0.4)]  # the same gain on every seed
    assert rows["rest_loss"]["delta_mean"] == 0.0 and rows["ratio"]["delta_mean"] == pytest.approx(-0.8)


def test_cli_reads_train_summaries_from_a_home(tmp_path):
    from flows.cli import app
    from storage.db import Database
    from storage.stage_runs import record

    db = Database(tmp_path / "skipthink.duckdb")
    for i, s in enumerate([_summary(m, seed, [2.0, 1.0 - 0.3 * (m != "ft") + 0.05 * seed], [1.0, 0.5]) for m in ("ft", "cwt-sbc") for seed in range(3)]):
        record(db, "train", f"fp{i}", "completed", summary=s, run_name="m")
    record(db, "train", "fp-other", "completed", summary={"method": "answer-only"})  # a run without statistics is skipped
    out, fig = tmp_path / "mechanism.json", tmp_path / "mechanism.png"
    res = CliRunner().invoke(app, ["results", "mechanism", str(tmp_path), "--out", str(out), "--figure", str(fig)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert set(data["over_training"]["coin_flip"]) == {"ft", "cwt-sbc"}
    assert {r["figure"]: r["delta_mean"] for r in data["against_ft"]}["core_loss"] == pytest.approx(-0.3)
    assert fig.stat().st_size > 10_000

    empty = tmp_path / "empty"
    empty.mkdir()
    Database(empty / "skipthink.duckdb").count("stage_runs")
    res = CliRunner().invoke(app, ["results", "mechanism", str(empty)])
    assert res.exit_code == 1 and "no train stage with core-token statistics" in res.output
