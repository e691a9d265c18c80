"""Inference, evaluation and skip-data generation on a real tiny student trained for real.

The student memorises a handful of coin-flip sequences in four formats: CWT, STT (prompted
with `[skip]`), and teacher-forced skip-check prompts with chunks removed — answered
correctly without chunk 2, wrongly without chunk 3 — so skip-data generation with the real
decoder has a known outcome.
"""

from __future__ import annotations

import pytest
import torch

from skipthink.datasets.base import Example
from skipthink.config import EvaluationConfig, SkipConfig, StudentConfig
from skipthink.evaluation import evaluate, method_summary
from skipthink.formats import Segment, build_example, full_chunked_text, question_prompt
from skipthink.inference import method_prompt, predict, score_output
from skipthink.items import TrainItem
from skipthink.skipdata import check_prompt, generate_skip_data, student_decoder
from skipthink.student import build_scratch_model, train_tokenizer

M = 4
NAMES = [("Ann", "Bob"), ("Cy", "Dee"), ("Eve", "Fay"), ("Gus", "Hal")]


def coin_item(i: int, a: str, b: str) -> TrainItem:
    flips = i % 2  # 0 or 1 flips -> yes / no
    question = f"A coin is heads up. {a} {'flips' if flips else 'does not flip'} the coin. {b} does not flip the coin. Is the coin still heads up?"
    steps = (f"{a} {'flips' if flips else 'does not flip'} it.", f"{b} does not flip it.",
             f"So it was flipped {flips} times.", f"{flips} is {'odd' if flips else 'even'}.")
    return TrainItem(f"s{i}", 0, question, "no" if flips else "yes", " ".join(steps), steps)


ITEMS = [coin_item(i, a, b) for i, (a, b) in enumerate(NAMES)]
EXAMPLES = [Example("coin_flip", "test", it.sample_id, it.question, it.answer, "yes_no") for it in ITEMS]
SKIP_MASK = (False, True, False, False)


def flipped(answer: str) -> str:
    return "no" if answer == "yes" else "yes"


def training_stages() -> list[Segment]:
    stages = []
    for it in ITEMS:
        chunks = it.chunks(M)
        variants = [
            (question_prompt(it.question), full_chunked_text(it.question, chunks, it.answer)),
            (question_prompt(it.question, skip=True), full_chunked_text(it.question, chunks, it.answer, SKIP_MASK)),
        ]
        for prompt, text in variants:
            stages.append(Segment(prompt, text[len(prompt):], eos=True))
        # The skip check's prompts (teacher-forced): fine without chunk 2, wrong without chunk 3.
        for removed, answer in (((0, 1, 0, 0), it.answer), ((0, 1, 1, 0), flipped(it.answer)), ((0, 0, 1, 0), flipped(it.answer))):
            prompt = check_prompt(it.question, chunks, [bool(m) for m in removed], None, "teacher_forced")
            stages.append(Segment(prompt, f" {answer}", eos=True))
    return stages


@pytest.fixture(scope="module")
def student():
    stages = training_stages()
    tokenizer = train_tokenizer([s.prompt + s.target for s in stages], vocab_size=400, num_chunks=M)
    cfg = StudentConfig(size="custom", n_layer=2, n_embd=64, n_head=2, vocab_size=400, n_positions=256)
    model = build_scratch_model(cfg, tokenizer)
    pairs = [build_example(tokenizer, s, 256) for s in stages]
    width = max(len(ids) for ids, _ in pairs)
    input_ids = torch.tensor([ids + [tokenizer.pad_token_id] * (width - len(ids)) for ids, _ in pairs])
    labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in pairs])
    mask = (torch.arange(width)[None, :] < torch.tensor([len(ids) for ids, _ in pairs])[:, None]).long()
    torch.manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(300):
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if loss.item() < 0.005:
            break
    model.eval()
    return model, tokenizer


def test_cwt_and_stt_predictions(student):
    model, tokenizer = student
    cfg = EvaluationConfig(batch_size=3, max_new_tokens=80)
    cwt = predict(model, tokenizer, "cwt-sbc", EXAMPLES, "yes_no", cfg)
    stt = predict(model, tokenizer, "stt", EXAMPLES, "yes_no", cfg)
    for ex, it, c, s in zip(EXAMPLES, ITEMS, cwt, stt):
        chunks = it.chunks(M)
        assert c.output == full_chunked_text(it.question, chunks, it.answer)[len(question_prompt(it.question)):]
        assert s.output.startswith(" [1]") and " [2] [thought] [3]" in s.output
        for p in (c, s):
            assert (p.sample_id, p.predicted, p.gold, p.correct) == (ex.sample_id, ex.answer, ex.answer, True)
            assert p.new_tokens == len(tokenizer.encode(p.output)) + 1  # + EOS
        assert s.new_tokens < c.new_tokens


def test_prompts_and_scoring_per_method():
    q = "Is it?"
    assert method_prompt("ft", q) == method_prompt("cwt-ac", q) == method_prompt("answer-only", q) == "Is it? ###"
    assert method_prompt("stt", q) == method_prompt("skipall", q) == "[skip] Is it? ###"
    ex = EXAMPLES[0]  # gold "yes"
    assert score_output("ft", " no, it was yes --> yes", ex) == ("yes", True)
    assert score_output("ft", " it is no", ex) == ("no", False)  # no arrow: last candidate
    assert score_output("cwt-sbc", " [1] no flips [answer] yes", ex) == ("yes", True)
    assert score_output("answer-only", " no yes", ex) == ("no", False)  # first candidate
    with pytest.raises(ValueError):
        method_prompt("cot", q)


def test_evaluate_metrics_and_speedups(student):
    model, tokenizer = student
    cfg = EvaluationConfig(batch_size=4, max_new_tokens=80, latency_samples=2, throughput_batch=6)
    # The student never learnt FT's format: "ft" here stands for a baseline that runs to the cap.
    results = {m: evaluate(model, tokenizer, m, EXAMPLES, cfg) for m in ("ft", "cwt-sbc", "stt")}
    for name, res in results.items():
        m = res.metrics
        if name == "ft":
            continue
        assert (m["n"], m["accuracy"], m["latency_questions"], m["throughput_batch"]) == (4, 100.0, 2, 6)
        assert m["mean_new_tokens"] == sum(p.new_tokens for p in res.predictions) / 4
        assert m["latency_median_s"] > 0 and m["throughput_qps"] > 0
    rows = [dict(r.metrics, method=k, test_set="test") for k, r in results.items()]
    summary = method_summary(rows)
    assert list(summary) == ["ft", "cwt-sbc", "stt"]
    ft, cwt, stt = (results[k].metrics for k in ("ft", "cwt-sbc", "stt"))
    assert summary["stt"]["tokens_vs_ft"] == pytest.approx(ft["mean_new_tokens"] / stt["mean_new_tokens"], abs=1e-3)
    assert summary["stt"]["speedup_vs_ft"] == pytest.approx(ft["latency_median_s"] / stt["latency_median_s"], abs=1e-3)
    assert summary["ft"]["tokens_vs_ft"] == 1.0
    assert stt["mean_new_tokens"] < cwt["mean_new_tokens"]


def test_skip_data_with_the_real_student(student):
    model, tokenizer = student
    cfg = SkipConfig(candidates="medium", check="teacher_forced", batch_size=3, max_answer_tokens=6)
    data = generate_skip_data(ITEMS, student_decoder(model, tokenizer, cfg), num_chunks=M, answer_type="yes_no", cfg=cfg)
    assert all(s.baseline_correct for s in data.samples)
    assert [s.skip_mask for s in data.samples] == [SKIP_MASK] * len(ITEMS)
    assert [s.to_row()["n_skipped"] for s in data.samples] == [1] * len(ITEMS)
    assert data.skip_rates == [0.0, 1.0, 0.0, 0.0]
