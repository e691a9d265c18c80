"""The report: markdown tables with every method, the right numbers and their intervals, the
examples section, valid PNG figures."""

from __future__ import annotations

import re

import matplotlib.image

import pytest

from skipthink.config import METHODS
from skipthink.report import (
    MethodOutput,
    QuestionExample,
    SkipExample,
    embed_figures,
    paired_comparisons,
    render_skip_example,
    render_table,
    smooth,
    write_report,
)
from skipthink.stats import wilson_interval

ACC = {"answer-only": 51.0, "ft": 80.0, "cwt-ac": 82.0, "cwt-sbc": 86.0, "stt": 85.0, "skipall": 60.0}
TOKENS = {"answer-only": 2.0, "ft": 60.0, "cwt-ac": 64.0, "cwt-sbc": 66.0, "stt": 40.0, "skipall": 20.0}
LATENCY = {m: t / 1000 for m, t in TOKENS.items()}  # 1 ms per token


def metric_rows():
    rows = []
    for m in reversed(METHODS):  # input order must not matter
        rows.append({"method": m, "dataset": "coin_flip", "test_set": "test", "n": 200, "accuracy": ACC[m],
                     "mean_new_tokens": TOKENS[m], "latency_median_s": LATENCY[m], "throughput_qps": 100.0})
    # Two seeds for one cell of a second dataset, and a real-test-set column.
    rows += [{"method": "ft", "dataset": "multiarith", "test_set": None, "n": 100, "accuracy": a, "mean_new_tokens": 50.0,
              "latency_median_s": 0.05, "throughput_qps": 90.0} for a in (30.0, 40.0)]
    rows.append({"method": "stt", "dataset": "coin_flip", "test_set": "real", "n": 150, "accuracy": 70.0,
                 "mean_new_tokens": 45.0, "latency_median_s": 0.045, "throughput_qps": 80.0})
    return rows


def table_row(markdown: str, section: str, method: str) -> list[str]:
    block = markdown.split(f"## {section}")[1].split("\n## ")[0]
    line = next(l for l in block.splitlines() if l.startswith(f"| {method} |"))
    return [c.strip() for c in line.strip("|").split("|")][1:]


def test_write_report_files_and_numbers(tmp_path):
    skip_rates = {"coin_flip": [0.0, 0.6, 0.3, 0.0]}
    curves = {"coin_flip/ft": [(s, 3.0 / (s + 1)) for s in range(0, 100, 10)], "coin_flip/stt": [(0, 3.1), (50, 0.5)]}
    paths = write_report(tmp_path / "r", "run-1", metric_rows(), skip_rates, curves)
    assert set(paths) == {"markdown", "accuracy_vs_tokens", "skip_rates", "loss_curves"}
    md = paths["markdown"].read_text()
    assert md.startswith("# Skip-Thinking report: run-1")
    header = next(l for l in md.split("## Accuracy (%)")[1].splitlines() if l.startswith("| method"))
    assert header == "| method | coin_flip | coin_flip (real) | multiarith |"
    methods_in_order = [l.split("|")[1].strip() for l in md.split("## Accuracy (%)")[1].split("\n## ")[0].splitlines() if l.startswith("| ") and "method" not in l]
    assert methods_in_order == list(METHODS)
    for m in METHODS:
        ci = wilson_interval(round(ACC[m] * 2), 200).scaled(100)  # n = 200
        assert table_row(md, "Accuracy (%)", m)[0] == f"{ACC[m]:.1f} [{ci.low:.1f}, {ci.high:.1f}]"
        assert table_row(md, "Mean generated tokens", m)[0] == f"{TOKENS[m]:.1f}"
        speed = TOKENS["ft"] / TOKENS[m]
        assert table_row(md, "Speedup vs FT", m)[0] == f"{speed:.2f}x ({speed:.2f}x)"
    # Two seeds averaged, with the t interval over them: 35 ± 12.706 * 7.071 / sqrt(2).
    assert table_row(md, "Accuracy (%)", "ft")[2] == "35.0 [-28.5, 98.5]"
    assert table_row(md, "Accuracy (%)", "stt")[1:] == ["70.0 [62.2, 76.8]", "–"]
    assert table_row(md, "Speedup vs FT", "stt")[1] == "–"  # no FT on the real column
    for name in ("accuracy_vs_tokens", "skip_rates", "loss_curves"):
        png = paths[name]
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = matplotlib.image.imread(png)
        assert image.shape[0] > 200 and image.shape[1] > 300
        assert f"]({png.name})" in md


def test_figures_without_data_are_skipped(tmp_path):
    paths = write_report(tmp_path, "r", metric_rows()[:2], {}, {"x": []})
    assert set(paths) == {"markdown", "accuracy_vs_tokens"}


def test_render_table_plain_text():
    text = render_table(metric_rows())
    lines = text.splitlines()
    assert lines[0].split() == ["dataset", "method", "n", "acc", "%", "95%", "CI", "tokens", "lat", "ms", "q/s", "vs", "FT", "tok", "vs", "FT", "lat"]
    stt = next(l for l in lines if re.match(r"coin_flip\s+stt\s", l))
    # 170 of 200 correct: Wilson 95 % interval 79.4 % to 89.3 %.
    assert stt.split() == ["coin_flip", "stt", "200", "85.0", "[79.4,", "89.3]", "40.0", "40.0", "100.0", "1.50x", "1.50x"]
    assert len(lines) == 1 + 6 + 1 + 1


def examples():
    outputs = {
        "ft": MethodOutput(" Alice flips the coin, so it is tails up.\nBob flips it: heads up. --> yes", "yes", True),
        "cwt-sbc": MethodOutput(" [1] Alice flips it: tails. [2] Bob flips it: heads. [answer] yes", "yes", True),
        "stt": MethodOutput(" [1] Alice flips it: tails. [2] [thought] [answer] no", "no", False),
        "answer-only": MethodOutput(" yes | *bold*", "yes", True),
    }
    question = QuestionExample("test-0", "A coin is heads up. Alice flips. Bob flips. Is it heads up?", "yes", outputs)
    skip = SkipExample("train-4", "Q?", ["first step.", "middle step.", "last step."], [False, True, False], "no")
    return [question], [skip]


def test_examples_section_shows_every_method_side_by_side(tmp_path):
    questions, skips = examples()
    paths = write_report(tmp_path, "r", metric_rows(), {}, {}, examples=questions, skip_examples=skips)
    md = paths["markdown"].read_text()
    section = md.split("## Examples")[1]
    assert "### Question 1 (`test-0`)" in section and "> A coin is heads up. Alice flips. Bob flips. Is it heads up?" in section
    assert "Gold answer: **yes**" in section
    rows = {line.split(" | ")[0].strip("| "): line for line in section.splitlines() if line.startswith("| ") and "method" not in line}
    assert list(rows) == ["answer-only", "ft", "cwt-sbc", "stt"]  # the paper's order
    assert rows["ft"] == "| ft | Alice flips the coin, so it is tails up. Bob flips it: heads up. --> yes | yes | ✓ |"
    assert rows["stt"] == "| stt | [1] Alice flips it: tails. [2] [thought] [answer] no | no | ✗ |"
    assert rows["answer-only"] == "| answer-only | yes \\| \\*bold\\* | yes | ✓ |"  # cell-safe
    assert "- `train-4` (1 of 3 chunks skipped): Q? `###` `[1]` first step. `[2]` ~~middle step.~~ `[3]` last step. `[answer]` no" in section


def test_render_skip_example_strikes_only_skipped_chunks():
    text = render_skip_example(SkipExample("s", "q", ["a", "b", "c", "d"], [False, True, True, False], "7"))
    assert text == "q `###` `[1]` a `[2]` ~~b~~ `[3]` ~~c~~ `[4]` d `[answer]` 7"


def test_paired_comparisons_against_ft_and_cwt():
    # 10 questions: FT right on 5, STT right on those 5 and 3 more, CWT-SBC right on 6.
    ft = {f"q{i}": i < 5 for i in range(10)}
    stt = {f"q{i}": i < 8 for i in range(10)}
    cwt = {f"q{i}": i < 6 for i in range(10)}
    comparisons = {(a, b): t for a, b, t in paired_comparisons({"ft": ft, "stt": stt, "cwt-sbc": cwt})}
    assert set(comparisons) == {("stt", "ft"), ("cwt-sbc", "ft"), ("stt", "cwt-sbc")}
    t = comparisons[("stt", "ft")]
    assert t.n == 10 and t.mean_difference == pytest.approx(30.0)
    # differences: three 100s and seven 0s -> sd 48.30, t = 30 / (48.30 / sqrt 10) = 1.964, df 9
    assert t.t == pytest.approx(1.964, abs=1e-3) and t.p_value == pytest.approx(0.081, abs=1e-3)


def test_report_artifact_embeds_the_figures(tmp_path):
    paths = write_report(tmp_path, "r", metric_rows(), {}, {})
    md = paths["markdown"].read_text()
    embedded = embed_figures(md, {"accuracy_vs_tokens": paths["accuracy_vs_tokens"]})
    assert "](accuracy_vs_tokens.png)" in md and "](accuracy_vs_tokens.png)" not in embedded
    assert "![accuracy_vs_tokens](data:image/png;base64,iVBORw0KGgo" in embedded  # the PNG signature


def test_loss_smoothing_is_a_bias_corrected_moving_average():
    assert smooth([4.0, 4.0, 4.0], span=5) == pytest.approx([4.0, 4.0, 4.0])
    values = smooth([10.0, 0.0], span=3)  # alpha 0.5: (0.5*0.5*10) / (1 - 0.25)
    assert values == pytest.approx([10.0, 10.0 / 3])


def test_a_skip_note_explains_missing_skip_data(tmp_path):
    questions, _ = examples()
    note = "No training item passed the baseline check."
    md = write_report(tmp_path, "r", metric_rows(), {}, {}, examples=questions, skip_note=note)["markdown"].read_text()
    assert md.rstrip().endswith(f"### Skip data\n\n{note}")
