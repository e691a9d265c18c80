"""Sweeps: combinations validated up front, results aggregated into mean ± std over seeds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from flows.sweep import SweepConfig, aggregate, combinations, paired_vs_ft, render_markdown, run_each
from skipthink.config import ConfigError


def test_combinations_cover_the_grid_and_set_every_seed():
    spec = SweepConfig(name="s", preset="smoke", datasets=["coin_flip", "multiarith"], seeds=[0, 1], settings={"chunking.num_chunks": [2, 3]})
    runs = combinations(spec)
    assert len(runs) == 2 * 2 * 2
    label, overrides = runs[0]
    assert label == "s/coin_flip/chunking.num_chunks=2/seed0"
    assert {"dataset.seed=0", "training.seed=0", "student.init_seed=0", "chunking.num_chunks=2"} <= set(overrides)
    # Seed-major: every dataset and setting at seed 0 before any seed-1 run.
    assert [label.rsplit("/", 1)[1] for label, _ in runs] == ["seed0"] * 4 + ["seed1"] * 4


def test_dataset_overrides_reach_only_their_dataset():
    spec = SweepConfig(name="s", preset="smoke", datasets=["coin_flip", "multiarith"], dataset_overrides={"multiarith": ["training.max_length=384"]})
    runs = dict(combinations(spec))
    assert "training.max_length=384" in runs["s/multiarith/default/seed0"]
    assert "training.max_length=384" not in runs["s/coin_flip/default/seed0"]
    # One spec run on a subset of its datasets: the others' overrides wait unused.
    subset = dict(combinations(spec.model_copy(update={"datasets": ["coin_flip"]})))
    assert list(subset) == ["s/coin_flip/default/seed0"] and "training.max_length=384" not in subset["s/coin_flip/default/seed0"]
    with pytest.raises(ValueError, match="dataset_overrides: coinflip not in datasets"):  # a typo is still an error
        combinations(SweepConfig(preset="smoke", dataset_overrides={"coinflip": ["training.epochs=1"]}))


def test_a_bad_combination_fails_before_any_run():
    with pytest.raises(ConfigError, match="chunking.num_chunks"):
        combinations(SweepConfig(preset="smoke", settings={"chunking.num_chunks": [3, 0]}))
    with pytest.raises(ValidationError):
        SweepConfig(datasets=[])


def test_aggregate_mean_and_std_over_seeds():
    ft = {"mean_new_tokens": 60.0, "tokens_vs_ft": 1.0, "speedup_vs_ft": 1.0, "real_accuracy": None}
    results = [
        {"run_name": "s/coin_flip/default/seed0", "methods": {"stt": dict(ft, accuracy=70.0, tokens_vs_ft=2.0, skipping_share=40.0), "ft": dict(ft, accuracy=90.0)}},
        {"run_name": "s/coin_flip/default/seed1", "methods": {"stt": dict(ft, accuracy=74.0, tokens_vs_ft=1.5, skipping_share=60.0), "ft": dict(ft, accuracy=80.0, mean_new_tokens=70.0)}},
    ]
    rows = aggregate(results)
    assert [r["method"] for r in rows] == ["ft", "stt"]  # the paper's method order, not alphabetical
    row = rows[0]
    assert row["seeds"] == 2 and row["accuracy"] == 85.0 and row["accuracy_std"] == pytest.approx(7.071, abs=1e-3)
    # 95 % t-interval over two seeds: t(0.975, 1) = 12.706, times 7.071 / sqrt(2).
    assert row["accuracy_ci"] == pytest.approx(63.531, abs=1e-3)
    assert rows[1]["tokens_vs_ft"] == 1.75 and rows[1]["real_accuracy"] is None and rows[1]["real_accuracy_ci"] is None
    paired = paired_vs_ft(results)
    # STT - FT per seed: -20 and -6 -> mean -13, se 7, t = -1.857, df 1 (Cauchy): p = 1 - 2 atan(13/7) / pi
    assert paired == [{"dataset": "coin_flip", "setting": "default", "method": "stt", "seeds": 2, "difference": -13.0,
                       "ci": pytest.approx(88.943, abs=1e-3), "p_value": pytest.approx(0.3145, abs=1e-4)}]
    markdown = render_markdown(SweepConfig(name="s"), rows, done=2, total=3, paired=paired)
    assert "| coin_flip | default | ft | 2 | 85.00 ± 63.53 | 65.00 ± 63.53 | 1.00 ± 0.00 | 1.00 ± 0.00 |" in markdown
    assert "| coin_flip | default | stt | 2 | -13.00 ± 88.94 | 0.315 |" in markdown
    assert "real test split" not in markdown and "partial: 2 of 3 runs" in markdown
    # Whether STT skips at all sits beside its speedup; FT never recorded one.
    assert rows[1]["skipping_share"] == 50.0 and rows[0]["skipping_share"] is None
    assert "outputs that skip (%)" in markdown and "| 1.75 ± 3.18 | 1.00 ± 0.00 | 50.00 ± 127.06 |" in markdown


def test_one_seed_has_no_interval():
    rows = aggregate([{"run_name": "s/coin_flip/default/seed0", "methods": {"ft": {"accuracy": 80.0}}}])
    assert rows[0]["accuracy"] == 80.0 and rows[0]["accuracy_ci"] is None
    assert "| coin_flip | default | ft | 1 | 80.00 |" in render_markdown(SweepConfig(name="s"), rows, done=1, total=1)


@pytest.mark.slow
def test_sweep_command_runs_every_seed_and_writes_the_aggregate(tmp_path):
    home = tmp_path / "home"
    env = dict(os.environ, SKIPTHINK_HOME=str(home), PREFECT_HOME=str(home / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    env.pop("PREFECT_API_URL", None)
    args = ["--set", "name=t", "--set", "preset=smoke", "--set", "seeds=[0, 1]", "--set", "overrides=['evaluation.methods=[answer-only, ft]']"]
    proc = subprocess.run([sys.executable, "-m", "flows.cli", "sweep", *args], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = Path(home / "reports" / "sweep-t.json")
    data = json.loads(report.read_text())
    assert [r["run_name"] for r in data["runs"]] == ["t/coin_flip/default/seed0", "t/coin_flip/default/seed1"]
    rows = {r["method"]: r for r in data["rows"]}
    assert set(rows) == {"answer-only", "ft"} and all(r["seeds"] == 2 for r in rows.values())
    accs = [run["methods"]["ft"]["accuracy"] for run in data["runs"]]
    assert rows["ft"]["accuracy"] == pytest.approx(sum(accs) / 2, abs=1e-3)
    assert "± " in (home / "reports" / "sweep-t.md").read_text()


@pytest.mark.parametrize("spec_file", sorted(Path(__file__).resolve().parents[1].joinpath("deploy", "sweeps").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_sweep_spec_validates(spec_file):
    import yaml

    spec = SweepConfig(**yaml.safe_load(spec_file.read_text()))
    runs = combinations(spec)
    assert runs and all(label.startswith(f"{spec.name}/") for label, _ in runs)


def test_a_failing_run_is_recorded_and_the_others_still_run():
    runs = [("s/a/default/seed0", ["x=1"]), ("s/b/default/seed0", ["x=2"]), ("s/c/default/seed0", ["x=3"])]
    seen: list[int] = []

    def run_one(overrides):
        if overrides == ["x=2"]:
            raise FileNotFoundError("dataset.data_dir: /nowhere does not exist")
        return {"methods": {"ft": {"accuracy": 50.0}}}

    failures: dict[str, str] = {}
    results = run_each(runs, run_one, failures, on_result=lambda done: seen.append(len(done)))
    assert [r["run_name"] for r in results] == ["s/a/default/seed0", "s/c/default/seed0"]
    assert failures == {"s/b/default/seed0": "FileNotFoundError: dataset.data_dir: /nowhere does not exist"}
    assert seen == [1, 2]  # the partial report is rewritten after each finished run
