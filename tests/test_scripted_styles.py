"""Scripted-teacher rationale styles: exact text per task, correct answers, fingerprinted."""

import pytest

from skipthink.datasets import grade, load_examples
from skipthink.config import DatasetConfig, PipelineConfig, TeacherConfig, TeacherServerConfig
from skipthink.teacher.prompts import load_template
from skipthink.teacher_server.scripted import STYLES, ScriptedTeacher, read_answer
from skipthink.teacher_server.state import make_backend
from skipthink.teacher.stage import run_teacher_stage
from skipthink.teacher.store import MemoryRequestStore
from skipthink.text import split_steps
from tasks.stages import plan

COIN = ('A coin is heads up. Whitney flips the coin. Erika does not flip the coin. Tj flips the coin. Benito flips the coin. '
        'Is the coin still heads up? Note that "flip" here means "reverse".')
LAST = 'Take the last letters of each words in "Whitney Erika Tj Benito" and concatenate them.'
TRACK = ("Alice, Bob, and Claire are playing a game. At the start of the game, they are each holding a ball: Alice has a pink ball, "
         "Bob has a white ball, and Claire has a red ball. \n\nAs the game progresses, pairs of players trade balls. First, Claire and "
         "Alice swap balls. Then, Alice and Bob swap balls. Finally, Claire and Bob swap balls. At the end of the game, Alice has the "
         "\nWhich choice is true? Answer choices: (A) pink ball, (B) white ball, (C) red ball.")
ARITH = "Paula had 12 stickers. If she gave away 3 of them and then got 7 more, how many stickers would she have?"

FINE = {
    COIN: ("The coin starts heads up.\n"
           "Whitney flips the coin, so the coin is tails up.\n"
           "Erika does not flip the coin, so the coin is still tails up.\n"
           "Tj flips the coin, so the coin is heads up.\n"
           "Benito flips the coin, so the coin is tails up.\n\n"
           "So the coin is tails up."),
    LAST: ('We take the last letter of each name.\n'
           '"Whitney" ends with "y", so far "y".\n'
           '"Erika" ends with "a", so far "ya".\n'
           '"Tj" ends with "j", so far "yaj".\n'
           '"Benito" ends with "o", so far "yajo".\n\n'
           'So the answer is "yajo".'),
    TRACK: ("At the start, Alice has the pink ball, Bob has the white ball, and Claire has the red ball.\n"
            "First, Claire and Alice swap, so Alice has the red ball, Bob has the white ball, and Claire has the pink ball.\n"
            "Then, Alice and Bob swap, so Alice has the white ball, Bob has the red ball, and Claire has the pink ball.\n"
            "Finally, Claire and Bob swap, so Alice has the white ball, Bob has the pink ball, and Claire has the red ball.\n\n"
            "At the end, Alice has the white ball, which is (B)."),
    ARITH: "The numbers are 12, 3 and 7.\n12 + 7 = 19.\n19 - 3 = 16.\n\nSo the answer is 16.",
}
TERSE = {
    COIN: "The coin is flipped 3 times.\n\nSo the coin is tails up.",
    LAST: 'The last letters are "y", "a", "j", "o".\n\nSo the answer is "yajo".',
    TRACK: ("After all the swaps, Alice has the white ball, Bob has the pink ball, and Claire has the red ball.\n\n"
            "At the end, Alice has the white ball, which is (B)."),
    ARITH: "(12 + 7) - 3 = 16.\n\nSo the answer is 16.",
}
ANSWERS = {COIN: "no", LAST: "yajo", TRACK: "B", ARITH: "16"}
TASKS = ("coin_flip", "last_letter_concatenation", "tracking_shuffled_objects", "multiarith")


@pytest.mark.parametrize("style, expected", [("fine", FINE), ("terse", TERSE)])
def test_each_style_writes_the_exact_rationale(style, expected):
    teacher = ScriptedTeacher(error_rate=0.0, style=style)
    for question, body in expected.items():
        assert teacher.rationale(question, 0) == (" \n\n" + body, ANSWERS[question])
        assert teacher.rationale(question, 3) == teacher.rationale(question, 0)  # one fixed phrasing
    # the default style is unchanged: varied phrasing, same answers
    default = ScriptedTeacher(error_rate=0.0)
    assert {default.rationale(q, 0)[1] for q in expected} == set(ANSWERS.values())
    assert len({default.rationale(COIN, v)[0] for v in range(8)}) > 1


def test_fine_has_a_line_per_fact_and_terse_the_fewest():
    fine, terse, default = (ScriptedTeacher(0.0, style=s) for s in ("fine", "terse", "default"))
    # set-up + one step per flip / name / swap / operation + summary
    for question, facts in ((COIN, 4), (LAST, 4), (TRACK, 3), (ARITH, 2)):
        assert len(split_steps(fine.rationale(question, 0)[0])) == facts + 2
        assert len(split_steps(terse.rationale(question, 0)[0])) == 2
        assert len(split_steps(default.rationale(question, 0)[0])) >= facts + 2


@pytest.mark.parametrize("style", STYLES)
def test_answers_are_correct_at_error_rate_zero_and_wrong_steps_carry_through(style):
    template = load_template("zs_cot")
    right, wrong = ScriptedTeacher(0.0, seed=1, style=style), ScriptedTeacher(1.0, seed=1, style=style)
    for name in TASKS:
        cfg = DatasetConfig(name=name, n_train=30, n_test=5, val_fraction=0.0, synthetic={"n_objects": 5} if "tracking" in name else {})
        for e in load_examples(cfg):
            text, answer = right.rationale(e.question, 0)
            assert answer == e.answer and read_answer(name, e.question, text) == e.answer
            # the two-step prompt's answer call reads the answer back from this text
            [(stated, _)] = right.complete(template.answer_prompt(e.question, text), 1, 16, 0.0)
            assert grade(stated, e) == (e.answer, True)
            bad_text, bad = wrong.rationale(e.question, 0)
            assert bad != e.answer and read_answer(name, e.question, bad_text) == bad


def test_the_server_uses_the_style_and_the_style_is_in_the_teacher_fingerprint():
    assert make_backend(TeacherServerConfig(style="terse", error_rate=0.0)).rationale(LAST, 0)[0] == " \n\n" + TERSE[LAST]
    fps = {s: plan(PipelineConfig.model_validate({"teacher": {"server": {"style": s}}})).fp("teacher") for s in STYLES}
    assert len(set(fps.values())) == 3
    same_data = {s: plan(PipelineConfig.model_validate({"teacher": {"server": {"style": s}}})).fp("data") for s in STYLES}
    assert len(set(same_data.values())) == 1
    # an external teacher does not use the built-in server, so its style does not matter
    external = {s: plan(PipelineConfig.model_validate({"teacher": {"base_url": "http://x/v1", "server": {"style": s}}})).fp("teacher") for s in STYLES}
    assert len(set(external.values())) == 1


def test_the_teacher_stage_records_the_style_it_was_written_in():
    examples = [e for e in load_examples(DatasetConfig(name="last_letter_concatenation", n_train=6, n_test=2, val_fraction=0.0)) if e.split == "train"]
    store = MemoryRequestStore()
    default = run_teacher_stage(examples, TeacherConfig(server=TeacherServerConfig(error_rate=0.0)), store, "fp-default")
    assert default.summary["server_style"] == "default" and not any('so far "' in r["rationale"] for r in default.rationales)
    # same prompts, same store: the style is part of the request key, so nothing stale is reused
    fine = run_teacher_stage(examples, TeacherConfig(server=TeacherServerConfig(style="fine", error_rate=0.0)), store, "fp-fine")
    assert fine.summary["server_style"] == "fine" and fine.summary["filter"]["kept"] == 6 and fine.summary["usage"]["cached"] == 0
    assert all('so far "' in r["rationale"] and r["correct"] for r in fine.rationales)
    again = run_teacher_stage(examples, TeacherConfig(server=TeacherServerConfig(style="fine", error_rate=0.0)), store, "fp-fine")
    assert again.summary["usage"]["cached"] == 12 and [r["rationale"] for r in again.rationales] == [r["rationale"] for r in fine.rationales]
