"""Answer extraction and comparison, and the acceptance check against Fine-tune-CoT's published teacher accuracies."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from skipthink.datasets import DatasetError, Example, answer_type_for, extract_answer, grade, is_correct
from skipthink.datasets.finetune_cot import teacher_accuracy

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.mark.parametrize(
    "text, answer_type, prefix, expected",
    [
        (" 39.", "number", None, "39"),
        (" 1,200 apples and 3 pears", "number", None, "1200"),
        ("We have 4 + 5 = 9 --> 12 END", "number", "-->", "12"),
        ("We have 4 + 5 = 9 so 9", "number", "-->", "9"),  # prefix missing: last candidate
        ("[1] 3 apples [answer] 26.0", "float", "[answer]", "26.0"),
        (" (D).", "letter", None, "D"),
        (' "Yes, the coin is heads up."', "yes_no", None, "yes"),
        ("No: it is tails.", "yes_no", None, "no"),
        (' "yajo".', "string", None, "yajo"),
        ("The last letters are y, a --> \"ya\".", "string", "-->", "ya"),
        ("nothing here", "number", None, None),
    ],
)
def test_extract_answer(text, answer_type, prefix, expected):
    assert extract_answer(text, answer_type, prefix) == expected


def test_letter_set_limits_candidates():
    # "Bob" would read as B if every capital letter were a candidate.
    assert extract_answer(" Bob has the (C) ball", "letter", letters="AC") == "C"
    assert extract_answer(" Bob has the (C) ball", "letter", letters="ABC") == "B"


def test_is_correct_per_type():
    assert is_correct("26", "26.0", "float") and is_correct("26.0000001", "26.0", "float")
    assert not is_correct("26.0", "26", "number")  # integer datasets compare strings, as Fine-tune-CoT does
    assert is_correct("1200", "1,200", "number")
    assert is_correct("yes", "Yes", "yes_no") and not is_correct("no", "Yes", "yes_no")
    assert is_correct("yaeA", "yaeA", "string") and not is_correct("yaea", "yaeA", "string")
    assert not is_correct(None, "C", "letter")


def test_answer_type_for_every_known_dataset():
    assert [answer_type_for(d) for d in ("multiarith", "gsm8k", "svamp", "addsub", "single_eq")] == ["number", "number", "float", "float", "float"]
    assert [answer_type_for(d) for d in ("aqua", "commonsense_qa", "date_understanding", "tracking_shuffled_objects")] == ["letter"] * 4
    assert [answer_type_for(d) for d in ("strategy_qa", "coin_flip", "last_letter_concatenation")] == ["yes_no", "yes_no", "string"]
    with pytest.raises(DatasetError, match="nope"):
        answer_type_for("nope")


def test_grade_uses_the_examples_choice_letters():
    example = Example("tracking_shuffled_objects", "test", "1", "q", "E", "letter", {"choice_letters": "ABCDE"})
    assert grade("[1] Bob and Eve swap. [answer] (E)", example, prefix="[answer]") == ("E", True)


PUBLISHED = {  # dataset -> (score every completion?, published text-davinci-002 accuracy)
    "multiarith": (True, 78.79),
    "date_understanding": (True, 67.58),
    "tracking_shuffled_objects": (True, 53.20),
    "last_letter_concatenation": (True, 57.71),
    "coin_flip": (True, 90.04),
    "single_eq": (False, 81.50),
    "addsub": (False, 76.71),
    "svamp": (False, 64.20),
    "strategy_qa": (False, 53.45),
}


@pytest.mark.skipif(not DATA.is_dir(), reason="shared data folder absent")
def test_recorded_teacher_accuracies_reproduce_fine_tune_cot():
    got = {name: round(teacher_accuracy(DATA, name, all_completions=every)[1], 2) for name, (every, _) in PUBLISHED.items()}
    assert got == {name: acc for name, (_, acc) in PUBLISHED.items()}


@pytest.mark.skipif(not DATA.is_dir(), reason="shared data folder absent")
def test_cli_score_teacher_prints_one_json_line():
    result = CliRunner().invoke(app, ["data", "score-teacher", "multiarith", "--data-dir", str(DATA), "--all-completions"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == '{"dataset": "multiarith", "n": 792, "accuracy": 78.79}'
