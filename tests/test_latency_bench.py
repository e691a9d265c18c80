"""`bench latency`'s timing and arithmetic: students decoded side by side, ratios of the same questions."""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from skipthink.generation import generate
from skipthink.perf.latency import Timed, bootstrap_ratio, summarise, time_side_by_side
from tests.test_generation import build_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def _model(tokenizer, seed: int):
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=len(tokenizer), n_layer=1, n_embd=32, n_head=2, n_positions=128,
                     bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)
    return GPT2LMHeadModel(cfg).eval()


def test_each_student_decodes_its_own_prompts_as_it_would_alone(tokenizer):
    students = {"ft": (_model(tokenizer, 0), tokenizer), "stt": (_model(tokenizer, 1), tokenizer)}
    prompts = {"ft": ["A coin is heads up.", "Take the last letters"], "stt": ["Ada", "A coin is heads up. Tom flips"]}
    timings = time_side_by_side(students, prompts, max_new_tokens=9, repeats=2)
    for m, (model, tok) in students.items():
        alone = [g.new_tokens for g in generate(model, tok, prompts[m], max_new_tokens=9, batch_size=1)]
        assert [t.new_tokens for t in timings[m]] == alone, m
        assert all(t.seconds > 0 for t in timings[m])


def test_side_by_side_refuses_mismatched_questions(tokenizer):
    students = {"ft": (_model(tokenizer, 0), tokenizer), "stt": (_model(tokenizer, 1), tokenizer)}
    with pytest.raises(ValueError, match="same"):
        time_side_by_side(students, {"ft": ["a", "b"], "stt": ["a"]}, max_new_tokens=4, repeats=1)
    with pytest.raises(ValueError, match="repeats"):
        time_side_by_side(students, {"ft": ["a"], "stt": ["a"]}, max_new_tokens=4, repeats=0)


def test_ratios_are_of_the_same_questions_totals():
    timings = {"ft": [Timed(2.0, 20), Timed(4.0, 40), Timed(6.0, 60)], "stt": [Timed(1.0, 10), Timed(2.0, 20), Timed(4.0, 40)]}
    out = summarise(timings)
    stt = out["vs_ft"]["stt"]
    assert stt["latency_ratio"] == pytest.approx(12.0 / 7.0, abs=1e-3)
    assert stt["token_ratio"] == pytest.approx(120 / 70, abs=1e-3)
    assert stt["latency_ratio_ci95"][0] <= stt["latency_ratio"] <= stt["latency_ratio_ci95"][1]
    assert out["methods"]["ft"]["ms_per_token"] == pytest.approx(100.0)
    assert out["methods"]["stt"]["latency_median_s"] == 2.0
    with pytest.raises(ValueError, match="baseline"):
        summarise(timings, baseline="cwt-sbc")


def test_the_bootstrap_interval_is_a_point_when_every_question_has_the_same_ratio():
    assert bootstrap_ratio([2.0, 4.0, 8.0], [1.0, 2.0, 4.0]) == pytest.approx((2.0, 2.0))
    low, high = bootstrap_ratio([1.0, 9.0, 2.0, 5.0], [2.0, 1.0, 2.0, 1.0])
    assert low < 17.0 / 6.0 < high
