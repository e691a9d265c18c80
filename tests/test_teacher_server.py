"""The built-in teacher server: solvers on the real question files, the scripted style, replay
lookups, and the OpenAI endpoints through the official client."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request

import openai
import pytest

from skipthink.config import TeacherServerConfig
from skipthink.teacher.prompts import load_template
from skipthink.teacher_server.scripted import ScriptedTeacher
from skipthink.teacher_server import start_server
from skipthink.teacher_server.solvers import UnsolvableQuestion, solve
from tests.test_teacher_stage import synthetic_examples

COMPLETIONS = "finetune-cot-teacher-completions/saved/completion_data/B_text-davinci-002__C_zs_cot"


@pytest.mark.parametrize("name", ["coin_flip", "tracking_shuffled_objects", "last_letter_concatenation"])
def test_solvers_answer_the_real_questions(shared_data, name):
    data = json.loads((shared_data / COMPLETIONS / f"D_{name}.json").read_text())["data"]
    records = [c[0] for c in data.values()]
    solved = sum(solve(r["question"]).answer == r["answer"] for r in records)
    # Last letters: 15 real questions have a two-word name but one letter per name (ambiguous text).
    assert solved == len(records) - (15 if name == "last_letter_concatenation" else 0)
    assert all(solve(r["question"], wrong_step=0).answer != solve(r["question"]).answer for r in records[:100])


def test_solvers_answer_every_synthetic_question_and_a_wrong_step_changes_the_answer():
    for ex in synthetic_examples(40, seed=7):
        trace = solve(ex.question)
        assert trace.answer == ex.answer
        assert all(solve(ex.question, wrong_step=k).answer != ex.answer for k in range(len(trace.steps)))
    with pytest.raises(UnsolvableQuestion):
        solve("Who wrote Hamlet?")


def test_scripted_rationales_read_like_zero_shot_cot_and_are_deterministic():
    teacher = ScriptedTeacher(error_rate=0.0, seed=0)
    template = load_template("zs_cot")
    phrasings = set()
    for ex in synthetic_examples(6):
        prompt = template.rationale_prompt(ex.question)
        [(text, finish)] = teacher.complete(prompt, 1, 128, 0.0)
        assert finish == "stop" and text.startswith(" \n\n") and teacher.complete(prompt, 1, 128, 0.0)[0][0] == text
        lines = [l.strip() for l in text.strip().split("\n") if l.strip()]
        assert len(lines) >= 3  # set-up, one line per step, summary
        sampled = teacher.complete(prompt, 4, 128, 0.7)
        phrasings.update(t for t, _ in sampled)
        [(answer, _)] = teacher.complete(template.answer_prompt(ex.question, text), 1, 16, 0.0)
        expected = {"last_letter_concatenation": f' "{ex.answer}".', "tracking_shuffled_objects": f" ({ex.answer})."}.get(ex.dataset, f" {ex.answer}.")
        assert answer == expected
    assert len(phrasings) > 24  # several phrasings across samples
    wrong = ScriptedTeacher(error_rate=1.0, seed=0)
    ex = synthetic_examples(1)[0]
    text = wrong.complete(template.rationale_prompt(ex.question), 1, 128, 0.0)[0][0]
    answer = wrong.complete(template.answer_prompt(ex.question, text), 1, 16, 0.0)[0][0]
    assert answer.strip(' ".()') != ex.answer


def test_replay_serves_recorded_completions_and_refuses_unknown_questions(shared_data):
    record = json.loads((shared_data / COMPLETIONS / "D_multiarith.json").read_text())["data"]["0"][0]
    with start_server(TeacherServerConfig(backend="replay", data_dir=shared_data)) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-local", max_retries=0)
        r = client.completions.create(model="replay-teacher", prompt=record["reasoning_prompt"], max_tokens=128)
        assert r.choices[0].text == record["reasoning_completion"] and r.usage.completion_tokens > 0
        a = client.completions.create(model="replay-teacher", prompt=record["reasoning_prompt"] + r.choices[0].text + "\nTherefore, the answer is", max_tokens=32)
        assert a.choices[0].text == record["completion"] == " 39."
        with pytest.raises(openai.NotFoundError):
            client.completions.create(model="replay-teacher", prompt="Q: What is the capital of Mars?\nA: Let's think step by step.", max_tokens=8)
        with pytest.raises(openai.BadRequestError):
            client.completions.create(model="replay-teacher", prompt=record["reasoning_prompt"], max_tokens=8, n=3)
        assert server.request_count == 4


def test_openai_endpoints_models_chat_and_stats():
    with start_server(TeacherServerConfig()) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-local", max_retries=0)
        assert [m.id for m in client.models.list()] == ["scripted-teacher"]
        prompt = load_template("zs_cot").rationale_prompt(synthetic_examples(1)[0].question)
        chat = client.chat.completions.create(model="scripted-teacher", messages=[{"role": "user", "content": prompt}], max_tokens=5, n=2)
        assert [c.finish_reason for c in chat.choices] == ["length", "length"] and chat.usage.prompt_tokens > 20
        with urllib.request.urlopen(server.base_url.removesuffix("/v1") + "/stats") as response:
            stats = json.loads(response.read())
        assert stats["requests"] == 1 and stats["completions_ok"] == 1


def test_cli_serve_binds_loopback_and_answers(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "teacher", "serve", "--port", "0", "--latency-ms", "5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/v1", line).group(0)
        client = openai.OpenAI(base_url=url, api_key="sk-local", max_retries=0)
        assert [m.id for m in client.models.list()] == ["scripted-teacher"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
