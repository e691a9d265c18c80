"""Step-level reading of written rationales (skipthink/steps.py) and `skipthink results steps`."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from skipthink.steps import check_steps, read_outputs, skipped_chunks, step_table

REAL_TEACHER = ' \n\nThe last letter of "Jesse" is "e".\nThe last letter of "Roderick" is "k".\n\nSo, we can concatenate these letters to get "ek".'


def test_last_letter_steps_in_every_style_the_teachers_write():
    real = check_steps("last_letter_concatenation", REAL_TEACHER, "ek")
    assert (real.steps, real.named, real.right, real.on_target, real.joins_gold) == (2, 2, 2, 2, True)
    fine = check_steps("last_letter_concatenation", '"Elon" ends with "n", so far "n". "Musk" ends with "k", so far "nk".', "nk")
    assert (fine.steps, fine.right, fine.joins_gold) == (2, 2, True)
    colon = check_steps("last_letter_concatenation", 'Elon: the last letter is "n".\nMusk: the last letter is "k".', "nk")
    assert (colon.steps, colon.right) == (2, 2)
    bare = check_steps("last_letter_concatenation", "\n\nNico: o\nLorenzo: o\n\nSo the answer is \"oo\".", "oo")
    assert (bare.steps, bare.right, bare.joins_gold) == (2, 2, True)
    # By position: the letters are checked against gold, not against a name.
    positional = check_steps("last_letter_concatenation", 'The last letter of the first word is "o". The last letter of the second word is "y".', "oy")
    assert (positional.steps, positional.named, positional.right, positional.on_target, positional.joins_gold) == (2, 0, 0, 2, True)


def test_a_wrong_letter_a_miscopied_name_and_a_failed_join_are_told_apart():
    # "Llo" is a miscopied "Lloyd": its letter is right for the name written, off the gold target.
    out = check_steps("last_letter_concatenation", ' [1] The last letter of "Cinthia" is "a". The last letter of "Llo" is "o". [2] The last letter of "Jc" is "y".', "adc")
    assert (out.steps, out.right, out.on_target, out.joins_gold) == (3, 2, 1, False)
    joined = check_steps("last_letter_concatenation", 'The last letter of "Matilde" is "e". The last letter of "Jan" is "n". So "ne". --> ne', "en")
    assert joined.joins_gold and joined.right == 2


def test_arithmetic_steps_are_checked_by_doing_the_arithmetic():
    out = check_steps("multiarith", "The numbers are 3, 4 and 5. 3 + 4 = 7. 7 * 5 = 36. So the answer is 36.", "36")
    assert (out.steps, out.right, out.joins_gold) == (2, 1, True)
    assert check_steps("multiarith", "12 / 4 = 3. 3 - 5 = -2. 1,200 + 3 = 1,203.", "1203").right == 3
    assert check_steps("multiarith", "6 / 0 = 0.", "0").right == 0
    assert check_steps("tracking_shuffled_objects", "Alice has the ball.", "A") is None


def test_coin_flip_steps_follow_the_side_and_tell_a_miscopied_answer_from_a_wrong_update():
    # The real-test failure of the transfer students: every update right, the last side says
    # heads, and the answer says otherwise (joins to gold, answer wrong).
    chain = ("The coin starts heads up.\nCin does not flip the coin, so the coin is still heads up.\n"
             "Jcacguel flips the coin, so the coin is tails up.\nJc flips the coin, so the coin is heads up.\n\nSo the coin is heads up.")
    out = check_steps("coin_flip", chain, "yes")
    assert (out.steps, out.right, out.joins_gold) == (3, 3, True)
    assert check_steps("coin_flip", chain, "no").joins_gold is False
    # A wrong update is one wrong step; the next is checked against what the chain said.
    wrong = "Ann flips the coin, so the coin is heads up.\nBo flips the coin, so it's now tails up.\nCy doesn't flip the coin, so it remains tails up."
    out = check_steps("coin_flip", wrong, "no")
    assert (out.steps, out.right, out.joins_gold) == (3, 2, True)
    # Chunked outputs hold every chunk on one line; after a skipped chunk the side is unknown.
    chunked = (" [1] The coin starts heads up. [2] Kayla flips the coin, so the coin is tails up. [3] [thought]"
               " [4] Clark flips the coin, so the coin is heads up. [5] So the coin is heads up. [answer] yes")
    out = check_steps("coin_flip", chunked, "yes")
    assert (out.steps, out.named, out.right, out.joins_gold) == (2, 1, 1, True)
    # The real teacher lists the actions, then counts: no side per action, no steps.
    real = "Ka flips the coin. Sherrie flips the coin. So the coin was flipped 2 times. So the coin is still heads up."
    assert check_steps("coin_flip", real, "yes").steps == 0
    # The terse style's count and an answer-only output are no steps.
    assert check_steps("coin_flip", "The coin is flipped 2 times. So the coin is heads up.", "yes").steps == 0


def test_skip_counts_and_step_figures_of_a_group():
    rows = [
        {"output": " [1] [thought] [2] The last letter of \"Al\" is \"l\". [answer] l", "gold": "l", "correct": True},
        {"output": " [1] The last letter of \"Bo\" is \"o\". [2] [thought] [3] [thought] [answer] x", "gold": "o", "correct": False},
        {"output": " The last letter of \"Cy\" is \"c\". --> c", "gold": "y", "correct": False},
        {"output": " nothing", "gold": "z", "correct": False},
    ]
    assert [skipped_chunks(r["output"]) for r in rows] == [1, 2, 0, 0]
    got = read_outputs("last_letter_concatenation", rows)
    assert got["n"] == 4 and got["accuracy"] == 25.0
    assert got["skipping_share"] == 50.0 and got["mean_skipped_chunks"] == 0.75
    assert got["steps"] == 3 and got["steps_right"] == pytest.approx(200 / 3, abs=0.01)
    assert got["joins_gold"] == 50.0 and got["joins_gold_answer_wrong"] == 25.0
    # No chain at all (answer-only): no step figures rather than zeros.
    bare = read_outputs("last_letter_concatenation", [{"output": " ab", "gold": "ab", "correct": True}])
    assert bare["steps"] == 0 and "joins_gold" not in bare
    with pytest.raises(ValueError, match="no outputs"):
        read_outputs("multiarith", [])


def test_runs_are_summarised_over_seeds_with_an_interval():
    def rows(run, correct):
        return [{"run_name": run, "dataset": "last_letter_concatenation", "group": "ft", "test_set": "test",
                 "output": 'The last letter of "Al" is "l".', "gold": "l", "correct": c} for c in correct]

    table = step_table(rows("s/d/default/seed0", [True, False]) + rows("s/d/default/seed1", [True, True]) + rows("s/d/default/seed2", [False, False]))
    assert [(r["seed"], r["accuracy"]) for r in table["runs"]] == [(0, 50.0), (1, 100.0), (2, 0.0)]
    acc = table["summary"]["last_letter_concatenation"]["test"]["ft"]["accuracy"]
    assert acc["mean"] == 50.0 and acc["runs"] == 3 and acc["ci95"] == pytest.approx(124.2, abs=0.1)


def test_cli_reads_student_outputs_and_teacher_rationales_from_a_home(tmp_path):
    from flows.cli import app
    from storage.db import Database
    from storage.evaluation import write_results
    from storage.examples import write_examples, write_rationales
    from storage.stage_runs import record

    db = Database(tmp_path / "skipthink.duckdb")
    write_examples(db, "data1", [{"dataset": "last_letter_concatenation", "split": "train", "sample_id": f"q{i}", "question": "?",
                                  "answer": "ek", "answer_type": "string"} for i in range(2)])
    record(db, "teacher", "t1", "completed", run_name="sw/last_letter_concatenation/default/seed0", upstream={"data": "data1"})
    write_rationales(db, "t1", [
        {"dataset": "last_letter_concatenation", "sample_id": "q0", "completion_index": 0, "rationale": REAL_TEACHER, "predicted": "ek", "correct": True, "kept": True},
        {"dataset": "last_letter_concatenation", "sample_id": "q1", "completion_index": 0, "rationale": REAL_TEACHER.replace('"ek"', '"ke"'), "predicted": "ke", "correct": False, "kept": False},
    ])
    record(db, "evaluate", "e1", "completed", run_name="sw/last_letter_concatenation/default/seed0")
    write_results(db, "e1", [{"method": "stt", "dataset": "last_letter_concatenation", "test_set": "test", "sample_id": "q9",
                              "output": ' [1] [thought] [2] The last letter of "Roderick" is "k". [answer] k', "gold": "k", "correct": True}], [])
    out = tmp_path / "steps.json"
    res = CliRunner().invoke(app, ["results", "steps", str(tmp_path), "--out", str(out), "--command", "skipthink results steps H"])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["commands"] == ["skipthink results steps H"]
    summary = data["steps"]["summary"]["last_letter_concatenation"]
    assert summary["test"]["stt"]["skipping_share"]["mean"] == 100.0
    kept, rejected = summary["teacher"]["teacher kept"], summary["teacher"]["teacher rejected"]
    assert kept["joins_gold"]["mean"] == 100.0 and kept["accuracy"]["mean"] == 100.0
    # The rejected rationale found both letters and then wrote them in the wrong order.
    assert rejected["steps_right"]["mean"] == 100.0 and rejected["joins_gold_answer_wrong"]["mean"] == 100.0

    res = CliRunner().invoke(app, ["results", "steps", str(tmp_path), "--dataset", "multiarith"])
    assert res.exit_code == 1 and "no evaluated outputs of multiarith" in res.output


def test_share_of_outputs_that_skip_counts_the_runs_own_split_only(tmp_path):
    from storage.db import Database
    from storage.evaluation import share_containing, write_results

    db = Database(tmp_path / "skipthink.duckdb")
    outputs = [(" [1] [thought] [answer] a", "test"), (" [1] x [answer] a", "test"), (" [1] [thought] [2] [thought] [answer] a", "test"),
               (" [1] x [answer] a", "test"), (" [1] [thought] [answer] a", "real"), (" [1] [thought] [answer] a", "real")]
    write_results(db, "e1", [{"method": "stt", "dataset": "coin_flip", "test_set": t, "sample_id": f"q{i}", "output": o} for i, (o, t) in enumerate(outputs)], [])
    write_results(db, "e2", [{"method": "ft", "dataset": "coin_flip", "test_set": "test", "sample_id": "q0", "output": " a --> a"}], [])
    assert share_containing(db, ["e1", "e2", "absent"], "[thought]") == {"e1": 50.0, "e2": 0.0}
    assert share_containing(db, [], "[thought]") == {}
