"""The claim verdicts follow their rules: paired by seed, floor and ceiling untestable, mixed inconclusive."""

import json

from typer.testing import CliRunner

import pytest

from skipthink.claims import attach_latency, cells, judge, results_table, welch

SEEDS = ("seed0", "seed1", "seed2")


def run(dataset: str, seed: str, setting: str = "default", **methods: dict) -> dict:
    return {"run_name": f"s/{dataset}/{setting}/{seed}", "methods": {m.replace("_", "-"): v for m, v in methods.items()}}


def acc(a: float, tokens: float | None = None) -> dict:
    return {"accuracy": a, "tokens_vs_ft": tokens}


def sweep(runs: list[dict]) -> dict:
    return {"spec": {"name": "s", "preset": "smoke", "overrides": []}, "finished": len(runs), "total": len(runs), "runs": runs}


def judged(runs: list[dict]) -> dict:
    return judge(cells([sweep(runs)], lambda s: "scratch nano"))


def test_cwt_beats_ft_supported_when_every_seed_gains_and_untestable_at_the_floor():
    runs = []
    for i, seed in enumerate(SEEDS):
        runs.append(run("coin_flip", seed, answer_only=acc(50), ft=acc(70 + i), cwt_sbc=acc(80 + i + 0.5 * i), cwt_ac=acc(75 + i)))
        runs.append(run("multiarith", seed, answer_only=acc(5), ft=acc(6 + i), cwt_sbc=acc(7), cwt_ac=acc(6)))  # nothing learns
    claim = judged(runs)["cwt_sbc_beats_ft"]
    by_task = {e["task"]: e for e in claim["evidence"]}
    assert by_task["coin_flip"]["verdict"] == "supported" and by_task["coin_flip"]["seeds"] == 3
    assert by_task["coin_flip"]["delta_mean"] == 10.5 and by_task["coin_flip"]["ci95"][0] > 0
    assert by_task["multiarith"]["verdict"] == "untestable" and "floor" in by_task["multiarith"]["note"]
    assert claim["verdict"] == "supported"


def test_a_noisy_difference_is_inconclusive_and_a_reversal_contradicts():
    runs = [run("coin_flip", s, answer_only=acc(50), ft=acc(f), cwt_sbc=acc(c), cwt_ac=acc(a))
            for s, f, c, a in zip(SEEDS, (80, 90, 70), (90, 80, 75), (96, 87, 81))]
    verdicts = judged(runs)
    assert verdicts["cwt_sbc_beats_ft"]["verdict"] == "inconclusive"  # +10, -10, +5
    sbc_vs_ac = verdicts["sbc_beats_average_chunking"]
    assert sbc_vs_ac["evidence"][0]["verdict"] == "contradicted" and sbc_vs_ac["verdict"] == "not supported"


def test_an_eta_ablation_is_paired_by_seed_and_never_decides_the_sbc_verdict():
    runs = [run("coin_flip", s, answer_only=acc(50), cwt_ac=acc(80 + i), cwt_sbc=acc(79 + i)) for i, s in enumerate(SEEDS)]
    runs += [run("coin_flip", s, "chunking.eta=0.0", cwt_sbc=acc(90 + 2 * i)) for i, s in enumerate(SEEDS[:2])]  # two seeds ran
    claim = judged(runs)["sbc_beats_average_chunking"]
    by = {e["comparison"]: e for e in claim["evidence"]}
    assert by["SBC vs average chunking"]["verdict"] == "contradicted" and claim["verdict"] == "not supported"
    vs_ac = by["SBC at chunking.eta=0.0 vs average chunking"]
    assert vs_ac["seeds"] == 2 and vs_ac["delta_mean"] == 10.5 and vs_ac["verdict"] == "supported (ablation)"
    vs_sbc = by["SBC at chunking.eta=0.0 vs SBC at the default eta"]
    assert vs_sbc["delta_mean"] == 11.5 and vs_sbc["values"] == {"cwt-sbc (chunking.eta=0.0)": 91.0, "cwt-sbc (default)": 79.5}


def test_ceiling_is_untestable_and_equal_token_runs_are_paired_in_their_own_setting():
    runs = [run("coin_flip", s, answer_only=acc(50), ft=acc(100), cwt_sbc=acc(99.5)) for s in SEEDS]
    runs += [run("coin_flip", s, "training.budget=tokens", answer_only=acc(50), ft=acc(90 + i), cwt_sbc=acc(80 + i)) for i, s in enumerate(SEEDS)]
    ev = judged(runs)["cwt_sbc_beats_ft"]["evidence"]
    assert [(e["comparison"], e["verdict"]) for e in ev] == [("equal epochs", "untestable"), ("equal target tokens", "contradicted")]
    assert ev[1]["delta_mean"] == -10.0


def test_stt_needs_both_faster_and_minimal_loss():
    fast_small_loss = [run("coin_flip", s, answer_only=acc(50), ft=acc(90 + i), stt=acc(89 + i, 1.5 + 0.1 * i), skipall=acc(60 + i, 4.0))
                       for i, s in enumerate(SEEDS)]
    claim = judged(fast_small_loss)["stt_faster_with_minimal_loss"]
    combined, speed, loss, latency = claim["evidence"]
    assert speed["verdict"] == "supported (part)" and "inside the paper's" in speed["note"] and speed["delta_mean"] == 1.6
    assert loss["verdict"] == "supported (part)" and loss["delta_mean"] == -1.0
    assert combined["verdict"] == "supported" and claim["verdict"] == "supported"
    assert judged(fast_small_loss)["skipall_loses_more_than_stt"]["verdict"] == "supported"

    # No speedup_vs_ft in these reports: the latency part has nothing to report, and decides nothing.
    assert latency["verdict"] == "untestable (reported)" and "evaluate stages" in latency["comparison"]

    big_loss = [run("coin_flip", s, answer_only=acc(50), ft=acc(90 + i), stt=acc(70 + i, 1.5 + 0.1 * i)) for i, s in enumerate(SEEDS)]
    claim = judged(big_loss)["stt_faster_with_minimal_loss"]
    assert claim["evidence"][0]["verdict"] == "contradicted" and claim["verdict"] == "not supported"


def test_latency_is_reported_beside_the_stt_verdict_from_the_side_by_side_bench_when_given():
    runs = [run("coin_flip", s, answer_only=acc(50), ft=acc(90 + i), stt=dict(acc(89 + i, 1.5), speedup_vs_ft=0.7 + 0.2 * i)) for i, s in enumerate(SEEDS)]
    stage = judged(runs)["stt_faster_with_minimal_loss"]
    latency = stage["evidence"][3]
    assert latency["verdict"] == "inconclusive (reported)" and latency["delta_mean"] == 0.9 and "shared machine" in latency["note"]
    assert stage["verdict"] == "supported"  # tokens and accuracy decide; wall time is reported beside them

    benches = [{"run_name": f"s/coin_flip/default/{s}", "vs_ft": {"stt": {"latency_ratio": r}}} for s, r in zip(SEEDS, (1.45, 1.5, 1.55))]
    cs = attach_latency(cells([sweep(runs)], lambda s: "scratch nano"), [sweep(runs)], benches, lambda s: "scratch nano")
    latency = judge(cs)["stt_faster_with_minimal_loss"]["evidence"][3]
    assert latency["comparison"].endswith("(bench latency, side by side)") and latency["delta_mean"] == 1.5 and latency["verdict"] == "supported (reported)"
    with pytest.raises(ValueError, match="not a run of the given sweeps"):
        attach_latency(cs, [sweep(runs)], [{"run_name": "other/coin_flip/default/seed0", "vs_ft": {"stt": {"latency_ratio": 1.0}}}], lambda s: "scratch nano")


def test_speedup_smallest_on_last_letter_uses_an_unpaired_interval_across_tasks():
    runs = []
    for i, s in enumerate(SEEDS):
        runs.append(run("last_letter_concatenation", s, answer_only=acc(0), ft=acc(40), stt=acc(40, 1.05 + 0.01 * i)))
        runs.append(run("coin_flip", s, answer_only=acc(50), ft=acc(90), stt=acc(90, 1.6 + 0.05 * i)))
        runs.append(run("multiarith", s, answer_only=acc(5), ft=acc(30), stt=acc(30, 1.02 + 0.2 * i)))
    claim = judged(runs)["speedup_smallest_on_last_letter"]
    by_task = {e["task"]: e for e in claim["evidence"]}
    assert by_task["last_letter_concatenation vs coin_flip"]["verdict"] == "supported"
    assert by_task["last_letter_concatenation vs multiarith"]["verdict"] == "inconclusive"  # 1.06 vs 1.22 ± wide
    assert claim["verdict"] == "supported"  # one supports, one is inconclusive, none contradicts


def test_welch_matches_a_hand_computation():
    diff, iv, p = welch([1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0])
    assert diff == -3.5
    # se = sqrt(1/3 + 1.6667/4) = 0.8660; df = 4.9; t = -4.04 -> p ~ 0.0101
    assert abs(iv.high + 3.5 - 0.866 * 2.5769) < 0.02 and 0.009 < p < 0.0115


def test_cli_writes_claims_and_table(tmp_path):
    from flows.cli import app

    runs = [run("coin_flip", s, answer_only=acc(50), ft=acc(70 + i), cwt_sbc=acc(80 + i), cwt_ac=acc(75 + i), stt=acc(79 + i, 1.4), skipall=acc(60, 3.0))
            for i, s in enumerate(SEEDS)]
    report = tmp_path / "sweep-s.json"
    report.write_text(json.dumps(sweep(runs)))
    out = tmp_path / "claims.json"
    md = tmp_path / "claims.md"
    res = CliRunner().invoke(app, ["results", "claims", str(report), "--out", str(out), "--command", "skipthink sweep x.yaml", "--markdown", str(md)])
    assert res.exit_code == 0, res.output
    table = md.read_text()
    assert "| cwt sbc beats ft |" in table and "coin_flip, scratch nano (equal epochs, 3 seeds): +10 [10, 10], p = 0 (cwt-sbc 81, ft 71) → supported" in table
    data = json.loads(out.read_text())
    assert set(data["claims"]) == {"cwt_sbc_beats_ft", "sbc_beats_average_chunking", "stt_faster_with_minimal_loss",
                                   "speedup_smallest_on_last_letter", "skipall_loses_more_than_stt"}
    assert data["claims"]["cwt_sbc_beats_ft"]["verdict"] == "supported" and data["commands"] == ["skipthink sweep x.yaml"]
    assert data["sources"][0]["sweep"] == "s"

    # --latency: `bench latency` lines (a log around them is fine) replace the stage timings.
    bench = tmp_path / "latency.jsonl"
    bench.write_text("loading weights\n" + "\n".join(json.dumps({"benchmark": "latency", "run_name": f"s/coin_flip/default/{s}", "vs_ft": {"stt": {"latency_ratio": 1.2}}})
                                                    for s in SEEDS) + "\n")
    res = CliRunner().invoke(app, ["results", "claims", str(report), "--out", str(out), "--latency", str(bench)])
    assert res.exit_code == 0, res.output
    part = json.loads(out.read_text())["claims"]["stt_faster_with_minimal_loss"]["evidence"][3]
    assert part["delta_mean"] == 1.2 and part["seeds"] == 3 and "side by side" in part["comparison"]
    res = CliRunner().invoke(app, ["results", "claims", str(report), "--latency", str(md)])
    assert res.exit_code == 1 and "no `bench latency` result" in res.output

    table = results_table(cells([sweep(runs)], lambda s: "scratch nano"))
    row = table["scratch nano"]["coin_flip"]["default"]["ft"]
    assert row["seeds"] == 3 and row["accuracy_mean"] == 71.0 and row["accuracy_ci95"] > 0

    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    res = CliRunner().invoke(app, ["results", "table", str(bad)])
    assert res.exit_code == 1 and f"error: {bad}: not a sweep report" in res.output


def test_transfer_table_beats_the_target_only_when_the_interval_clears_it():
    from skipthink.claims import transfer_table

    def fig(real, tokens=None):
        return {"accuracy": 99.0, "real_accuracy": real, "tokens_vs_ft": tokens, "n_params": 480_000, "train_minutes": 3.0}

    runs = [run("coin_flip", s, answer_only=fig(50), ft=fig(86 + i), stt=fig(80 + 4 * i, 1.5)) for i, s in enumerate(SEEDS)]
    table = transfer_table(cells([sweep(runs)], lambda s: "scratch nano"))["coin_flip"]
    assert table["ft"]["real_accuracy_mean"] == 87.0 and table["ft"]["beats_target"] is True and table["ft"]["target"] == 83.33
    assert table["stt"]["beats_target"] is False and table["stt"]["tokens_vs_ft_mean"] == 1.5  # 84 +- 9.9 straddles 83.33
    assert table["ft"]["n_params"] == 480_000 and table["ft"]["minutes"] == 3.0
    # Two students on one task would share its row: refused, naming both.
    both = cells([sweep(runs)], lambda s: "scratch nano") + cells([sweep(runs)], lambda s: "scratch nano, dataset.synthetic.n_people=4")
    with pytest.raises(ValueError, match="coin_flip: two students"):
        transfer_table(both)


def test_identical_students_are_inconclusive_and_say_so():
    runs = [run("coin_flip", s, answer_only=acc(50), ft=acc(80 + i), cwt_ac=acc(95 + i), cwt_sbc=acc(95 + i)) for i, s in enumerate(SEEDS)]
    ev = judged(runs)["sbc_beats_average_chunking"]["evidence"][0]
    assert ev["verdict"] == "inconclusive" and ev["delta_mean"] == 0.0 and ev["note"] == "identical on every seed"


def test_pretrained_table_uses_seeds_when_it_has_them_and_wilson_for_one_run(tmp_path):
    from flows.cli import app

    def fig(a, tokens=40.0):
        return {"accuracy": a, "n": 100, "mean_new_tokens": tokens, "tokens_vs_ft": 40.0 / tokens, "speedup_vs_ft": 1.0}

    runs = [run("coin_flip", s, ft=fig(70 + 2 * i), stt=fig(68 + 2 * i, 20.0)) for i, s in enumerate(SEEDS)]
    runs.append(run("multiarith", "seed0", ft=fig(9.0), stt=dict(fig(5.0, 30.0), correct=6)))  # one seed ran
    report = tmp_path / "sweep-p.json"
    report.write_text(json.dumps(sweep(runs)))
    out = tmp_path / "pretrained.json"
    res = CliRunner().invoke(app, ["results", "pretrained", str(report), "--out", str(out)])
    assert res.exit_code == 0, res.output
    table = json.loads(out.read_text())["pretrained"]
    ft = table["coin_flip"]["ft"]
    # 70, 72, 74: mean 72, sd 2, t(2) = 4.303 -> half-width 4.97
    assert ft["accuracy_mean"] == 72.0 and ft["accuracy_ci95"] == [67.03, 76.97] and ft["seeds"] == 3 and ft["interval"] == "t over 3 seeds"
    assert table["coin_flip"]["stt"]["tokens_vs_ft_mean"] == 2.0 and table["coin_flip"]["stt"]["mean_new_tokens"] == 20.0
    assert ft["finetune_cot_gpt2_124m"] == 77.33 and table["multiarith"]["ft"]["finetune_cot_gpt2_124m"] == 8.33
    one = table["multiarith"]["ft"]
    # 9 of 100 correct: Wilson 95 % interval (0.1052 ± 0.0571) = [4.81, 16.23]
    assert one["seeds"] == 1 and one["interval"].startswith("wilson over 100 questions") and one["accuracy_ci95"] == [4.81, 16.23]
    assert list(table["coin_flip"]) == ["ft", "stt"]
    # A report that carries the correct count is taken at its word (6 of 100: [2.78, 12.48]).
    assert table["multiarith"]["stt"]["accuracy_ci95"] == [2.78, 12.48]


def test_method_summary_carries_the_correct_count_from_the_unrounded_accuracy():
    from skipthink.evaluation import method_summary

    row = dict(method="ft", test_set="own", n=30000, accuracy=100 * 10001 / 30000, mean_new_tokens=5.0, latency_median_s=0.1)
    summary = method_summary([row])["ft"]
    assert summary["accuracy"] == 33.34 and summary["correct"] == 10001  # 33.34 % of 30000 would be 10002


def test_ablation_table_pairs_each_setting_with_the_default_and_sbc_with_ac():
    from skipthink.claims import ablation_table

    runs = [run("coin_flip", s, answer_only=acc(50), ft=acc(90), cwt_ac=acc(80 + i), cwt_sbc=acc(81 + i)) for i, s in enumerate(SEEDS)]
    runs += [run("coin_flip", s, "chunking.eta=0.0", cwt_sbc=acc(85 + 2 * i)) for i, s in enumerate(SEEDS)]
    runs += [run("coin_flip", "seed0", "chunking.eta=0.2", cwt_sbc=acc(70))]  # one seed ran
    out = ablation_table(cells([sweep(runs)], lambda s: "scratch nano"))["scratch nano"]["coin_flip"]
    assert list(out["cells"]) == ["default", "chunking.eta=0.0", "chunking.eta=0.2"]
    assert out["cells"]["chunking.eta=0.0"]["cwt-sbc"]["accuracy_mean"] == 87.0 and out["cells"]["default"]["ft"]["seeds"] == 3
    by = {e["comparison"]: e for e in out["paired"]}
    # 85/87/89 against 81/82/83: +4, +5, +6
    assert by["cwt-sbc at chunking.eta=0.0 vs the default"]["delta_mean"] == 5.0 and by["cwt-sbc at chunking.eta=0.0 vs the default"]["verdict"] == "supported"
    assert by["cwt-sbc at chunking.eta=0.0 vs average chunking"]["delta_mean"] == 6.0
    assert by["cwt-sbc at chunking.eta=0.2 vs the default"]["seeds"] == 1 and by["cwt-sbc at chunking.eta=0.2 vs the default"]["verdict"] == "untestable"


def test_a_method_the_sweep_did_not_run_is_named_not_counted_as_few_seeds():
    runs = [run("coin_flip", s, answer_only=acc(50), ft=acc(70 + i), cwt_sbc=acc(80 + i), stt=acc(79 + i, 1.3)) for i, s in enumerate(SEEDS)]
    verdicts = judged(runs)
    (sbc_vs_ac,) = verdicts["sbc_beats_average_chunking"]["evidence"]
    assert sbc_vs_ac["verdict"] == "untestable" and sbc_vs_ac["note"] == "not run: cwt-ac" and sbc_vs_ac["seeds"] == 0
    (skipall,) = verdicts["skipall_loses_more_than_stt"]["evidence"]
    assert skipall["note"] == "not run: skipall"
    assert verdicts["cwt_sbc_beats_ft"]["evidence"][0]["verdict"] == "supported"


def test_students_on_real_and_generated_questions_are_never_paired():
    from skipthink.claims import student_label

    generated = {"spec": {"preset": "demo", "overrides": []}}
    real = {"spec": {"preset": "demo", "overrides": ["dataset.source=finetune_cot", "dataset.data_dir=/nowhere"]}}
    pretrained = {"spec": {"preset": "paper", "overrides": ["dataset.data_dir=/nowhere"]}}
    assert student_label(generated) == "scratch nano"
    # Evaluation settings leave the cell alone; a different generated task or teacher makes a new one.
    assert student_label({"spec": {"preset": "demo", "overrides": ["evaluation.real_data_dir=/nowhere"]}}) == "scratch nano"
    harder = {"spec": {"preset": "demo", "overrides": ["dataset.synthetic.n_people=4", "teacher.server.style=fine", "evaluation.max_new_tokens=160"]}}
    assert student_label(harder) == "scratch nano, dataset.synthetic.n_people=4, teacher.server.style=fine"
    assert student_label(real) == "scratch nano on finetune_cot"
    assert student_label(pretrained) == "smollm2-135m on finetune_cot, 160 train"
    small = {"spec": {"preset": "paper", "overrides": ["dataset.data_dir=/nowhere", "dataset.max_train=64"]}}
    assert student_label(small) == "smollm2-135m on finetune_cot, 64 train"
    # Before: both default cells were keyed (scratch nano, coin_flip, default) and merged seed by seed.
    a = dict(real, runs=[run("coin_flip", "seed0", ft=acc(30))])
    b = dict(generated, runs=[run("coin_flip", "seed0", ft=acc(90))])
    assert len(cells([a, b], student_label)) == 2
    # Two sweeps that still land on one cell may not overwrite each other's seeds.
    with pytest.raises(ValueError, match="ft seed0 of scratch nano on finetune_cot / coin_flip / default is in two sweeps"):
        cells([a, dict(a)], student_label)


def test_a_constant_small_gain_is_judged_against_the_test_questions_noise():
    """+1 pp on every seed has zero spread, so the t-interval alone calls it supported; with the
    question counts in the reports the interval is floored by their binomial noise."""
    from skipthink.claims import paired

    def fig(a, n):
        return {"accuracy": a, "n": n, "tokens_vs_ft": None}

    def judged_on(n, fixed):
        runs = [run("coin_flip", s, answer_only=fig(50, n), ft=fig(70, n), cwt_sbc=fig(71, n), stt=fig(71, n), skipall=fig(70, n)) for s in SEEDS]
        return cells([sweep(runs)], lambda s: "smollm2-135m", lambda s: fixed)

    (fixed,) = judged_on(150, True)
    ev = paired(fixed, "cwt-sbc", fixed, "ft", "equal epochs")
    # Fixed split of 150 questions: SE = 100 * sqrt((.71*.29 + .70*.30) / 150) = 5.27 pp.
    assert ev.verdict == "inconclusive" and "binomial floor" in ev.note
    assert abs(ev.ci95[0] - (1 - 1.959964 * 5.2656)) < 0.01 and ev.p_value > 0.8
    # Regenerated per seed: the three seeds' questions average, SE / sqrt(3).
    (regenerated,) = judged_on(150, False)
    wide, narrow = ev.ci95[1] - ev.ci95[0], paired(regenerated, "cwt-sbc", regenerated, "ft", "x").ci95
    assert abs((narrow[1] - narrow[0]) * 3 ** 0.5 - wide) < 0.01
    # A large constant gain still clears the floor: +20 pp on 10,000 questions.
    runs = [run("coin_flip", s, answer_only=fig(50, 10000), ft=fig(70, 10000), cwt_sbc=fig(90, 10000)) for s in SEEDS]
    (big,) = cells([sweep(runs)], lambda s: "x", lambda s: True)
    assert paired(big, "cwt-sbc", big, "ft", "x").verdict == "supported"
