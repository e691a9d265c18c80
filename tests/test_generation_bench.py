"""`bench generate` runs end to end on the smoke preset and reports consistent numbers."""

from __future__ import annotations

import json

import pytest

from skipthink.perf.generate import run


def test_generate_benchmark_small():
    result = run(preset="smoke", batch_size=4, new_tokens=8, repeats=1, ft_new_tokens=12, stt_new_tokens=6)
    json.dumps(result)  # one JSON line for the CLI
    assert (result["batch_size"], result["new_tokens"], result["ft_new_tokens"], result["stt_new_tokens"]) == (4, 8, 12, 6)
    for key in ("batched_tokens_per_s", "one_by_one_tokens_per_s", "ft_latency_s", "stt_latency_s"):
        assert result[key] > 0
    assert result["speedup"] == pytest.approx(result["batched_tokens_per_s"] / result["one_by_one_tokens_per_s"])
    assert result["stt_vs_ft_latency"] == pytest.approx(result["ft_latency_s"] / result["stt_latency_s"])
    assert "FT=12 (given) and STT=6 (given)" in result["latency_method"]


def test_the_default_preset_resolves_num_chunks_auto_on_the_toy_items():
    # The demo preset says `num_chunks: auto`, which a run resolves on its rationales; the
    # benchmarks have only toy items (six sentences each), so they resolve it there.
    from skipthink.perf.train import bench_config

    assert bench_config("demo", None).chunking.num_chunks == 6
    assert bench_config("smoke", None).chunking.num_chunks == 3  # an explicit M is kept
    assert bench_config("demo", "smollm2-135m").student.name == "smollm2-135m"
