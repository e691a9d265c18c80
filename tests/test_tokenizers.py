"""Scratch-student tokenizer kinds: what each makes one token, exact round trips, save/reload."""

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from skipthink.datasets import load_examples
from skipthink.config import DatasetConfig, StudentConfig
from skipthink.formats import special_tokens
from skipthink.student import build_initial_student, load_student, train_tokenizer
from skipthink.teacher_server.scripted import ScriptedTeacher
from skipthink.tokenizers import TOKENIZER_KINDS

M = 4
SPLIT_KINDS = ("char", "bpe_split")
LAST_LETTER_Q = 'Take the last letters of each words in "Whitney Erika Tj Benito" and concatenate them.'


@pytest.fixture(scope="module")
def texts():
    """Questions, rationales and answers of all four tasks, as the student stage collects them."""
    teacher = ScriptedTeacher(error_rate=0.0)
    out = []
    for name in ("coin_flip", "last_letter_concatenation", "tracking_shuffled_objects", "multiarith"):
        for e in load_examples(DatasetConfig(name=name, n_train=150, n_test=5, val_fraction=0.0)):
            out += [e.question, teacher.rationale(e.question, 0)[0], e.answer]
    return out


@pytest.fixture(scope="module")
def tokenizers(texts):
    return {kind: train_tokenizer(texts, 1024, M, kind) for kind in TOKENIZER_KINDS}


def pieces(tok, text):
    return tok.convert_ids_to_tokens(tok.encode(text, add_special_tokens=False))


def ids(tok, text):
    return tok.encode(text, add_special_tokens=False)


def contains(seq, sub):
    return any(seq[i : i + len(sub)] == sub for i in range(len(seq) - len(sub) + 1))


@pytest.mark.parametrize("kind", SPLIT_KINDS)
def test_a_names_last_letter_is_its_own_token(tokenizers, kind):
    tok = tokenizers[kind]
    question = pieces(tok, LAST_LETTER_Q)
    for name in ("Whitney", "Erika", "Tj", "Benito"):
        assert contains(question, list(name))  # one token per letter, so the last one too
    # the byte-level BPE hides them (the reason these kinds exist)
    assert "y" not in pieces(tokenizers["bpe"], LAST_LETTER_Q)


@pytest.mark.parametrize("kind", SPLIT_KINDS)
def test_a_numbers_digits_are_separate_tokens(tokenizers, kind):
    tok = tokenizers[kind]
    assert [p for p in pieces(tok, "He had 144 stickers and 96 more.") if p.isdigit()] == ["1", "4", "4", "9", "6"]
    assert pieces(tok, " [answer] 1024")[-4:] == ["1", "0", "2", "4"]
    assert pieces(tok, " 12 * 12 = 144.")[-4:] == ["1", "4", "4", "."]


@pytest.mark.parametrize("kind", SPLIT_KINDS)
def test_a_word_has_the_same_ids_in_question_rationale_and_answer(tokenizers, kind):
    tok = tokenizers[kind]
    # line start vs inside a sentence vs after a marker
    for text in ("Alice has the pink ball.", " \nAlice has the pink ball.", "First, Alice and Bob swap.", " [1] Alice has"):
        assert contains(ids(tok, text), ids(tok, "Alice")), text
    # a quoted name spells out the same letters in the question and in the rationale
    whitney = ids(tok, '"Whitney"')[1:-1]
    assert contains(ids(tok, LAST_LETTER_Q), whitney) and contains(ids(tok, ' \n\n"Whitney" ends with "y".'), whitney)
    # the last-letter answer after [answer] is made of the letters the rationale wrote in quotes
    answer = ids(tok, " [answer] yajo")[-4:]
    letters = [ids(tok, f'"{c}"')[1] for c in "yajo"]
    assert answer == letters
    # a number in the question, the rationale and the answer
    assert ids(tok, "39") == ids(tok, " [answer] 39")[-2:] == ids(tok, "So the answer is 39.")[-3:-1]


@pytest.mark.parametrize("kind", TOKENIZER_KINDS)
def test_encode_decode_round_trip_and_markers(tokenizers, texts, kind):
    tok = tokenizers[kind]
    odd = ["José and María  swap\tballs.\n\n  Ünïcode ✓ 007", " [1] x [2] [thought] [answer] 12 ### -->", ""]
    for text in texts[:60] + odd:
        assert tok.decode(ids(tok, text)) == text
    for marker in special_tokens(M):
        assert len(ids(tok, marker)) == 1 and len(ids(tok, f" {marker} ")) == 3


@pytest.mark.parametrize("kind", TOKENIZER_KINDS)
def test_save_and_reload(tokenizers, texts, tmp_path, kind):
    tok = tokenizers[kind]
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    assert len(again) == len(tok) and again.pad_token_id == tok.pad_token_id and again.eos_token_id == tok.eos_token_id
    for text in texts[:40] + [LAST_LETTER_Q + " ### [1] x [answer] wyao"]:
        assert ids(again, text) == ids(tok, text)


def test_initial_student_uses_the_configured_kind(texts, tmp_path):
    cfg = StudentConfig(size="nano", vocab_size=2048, n_positions=64, tokenizer="char")
    _, tok = load_student(build_initial_student(cfg, texts, M, Path(tmp_path) / "s"), device="cpu")
    # characters only: the vocabulary is the byte alphabet, the two specials, a few multi-byte
    # characters and the markers, far below the 2,048 a BPE would fill
    assert len(tok) < 300
    assert pieces(tok, "Benito")[-1] == "o" and len(pieces(tok, "Benito")) == 6
