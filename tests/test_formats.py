"""Every sequence format, token by token, on a real (tiny) byte-level BPE tokenizer.

Each test prints the tokens that carry loss, so `pytest -s` shows the exact masks.
"""

import pytest

from skipthink.formats import (
    IGNORE_INDEX,
    Segment,
    answer_only_segment,
    build_example,
    chunk_segments,
    ft_segment,
    full_chunked_text,
    special_tokens,
)
from skipthink.items import make_item
from skipthink.student import train_tokenizer
from skipthink.text import average_boundaries, chunks_from_boundaries, ensure_min_steps, split_steps

Q = "Is it up?"
CHUNKS = ["It starts up.", "Ka flips it.", "It is down."]
A = "no"
M = 3


@pytest.fixture(scope="module")
def tok():
    texts = [Q, *CHUNKS, A, "yes", "The coin is heads up. Ka flips it, so it is tails up."] * 5
    return train_tokenizer(texts, vocab_size=300, num_chunks=M)


def target_tokens(tok, stage: Segment, max_length: int = 128) -> list[str]:
    ids, labels = build_example(tok, stage, max_length)
    assert len(ids) == len(labels)
    kept = [i for i, l in zip(ids, labels) if l != IGNORE_INDEX]
    assert [l for l in labels if l != IGNORE_INDEX] == kept  # labels equal inputs where they count
    shown = tok.convert_ids_to_tokens(kept)
    print(f"\n{stage.prompt!r} => {shown}")
    return shown


def words(tok, text: str) -> list[str]:
    return tok.convert_ids_to_tokens(tok.encode(text, add_special_tokens=False))


@pytest.mark.parametrize("marker", special_tokens(M))
def test_markers_are_single_tokens_with_spaces_around(tok, marker):
    assert words(tok, marker) == [marker]
    # The space before a marker is its own token; the marker itself stays one token.
    assert words(tok, f"a {marker} b") == [*words(tok, "a"), "Ġ", marker, *words(tok, " b")]
    assert tok.decode(tok.encode(f"x {marker} y", add_special_tokens=False)) == f"x {marker} y"


def test_answer_only_target(tok):
    assert target_tokens(tok, answer_only_segment(Q, A)) == [*words(tok, " no"), tok.eos_token]


def test_ft_target(tok):
    got = target_tokens(tok, ft_segment(Q, " ".join(CHUNKS), A))
    assert got == [*words(tok, " " + " ".join(CHUNKS)), "Ġ", "-->", *words(tok, " no"), tok.eos_token]


def test_cwt_stages(tok):
    stages = chunk_segments(Q, CHUNKS, A)
    assert len(stages) == M + 1
    assert stages[1].prompt == f"{Q} ### [1] {CHUNKS[0]}"
    for j, stage in enumerate(stages[:M], start=1):
        got = target_tokens(tok, stage)
        assert got == ["Ġ", f"[{j}]", *words(tok, " " + CHUNKS[j - 1])]  # no EOS after a chunk stage
    assert target_tokens(tok, stages[M]) == ["Ġ", "[answer]", *words(tok, " no"), tok.eos_token]
    assert stages[M].prompt == f"{Q} ### [1] {CHUNKS[0]} [2] {CHUNKS[1]} [3] {CHUNKS[2]}"


def test_prompt_and_target_tokenise_like_the_whole_sequence(tok):
    for stage in chunk_segments(Q, CHUNKS, A):
        ids, _ = build_example(tok, stage, 128)
        assert ids[: len(ids) - stage.eos] == tok.encode(stage.prompt + stage.target, add_special_tokens=False)


def test_stt_skip_sample(tok):
    stages = chunk_segments(Q, CHUNKS, A, skip_mask=[False, True, False])
    assert [s.prompt for s in stages] == [
        f"[skip] {Q} ###",
        f"[skip] {Q} ### [1] {CHUNKS[0]}",
        f"[skip] {Q} ### [1] {CHUNKS[0]} [2] [thought] [3] {CHUNKS[2]}",
    ]
    # The skipped chunk's placeholder belongs to the next kept stage's target.
    assert target_tokens(tok, stages[1]) == ["Ġ", "[2]", "Ġ", "[thought]", "Ġ", "[3]", *words(tok, " " + CHUNKS[2])]
    assert target_tokens(tok, stages[2]) == ["Ġ", "[answer]", *words(tok, " no"), tok.eos_token]
    assert words(tok, stages[0].prompt)[0] == "[skip]"


def test_skipall(tok):
    stages = chunk_segments(Q, CHUNKS, A, skip_mask=[True] * M)
    assert len(stages) == 1
    assert stages[0].prompt == f"[skip] {Q} ###"
    assert target_tokens(tok, stages[0]) == ["Ġ", "[1]", "Ġ", "[thought]", "Ġ", "[2]", "Ġ", "[thought]", "Ġ", "[3]", "Ġ", "[thought]",
                                             "Ġ", "[answer]", *words(tok, " no"), tok.eos_token]
    assert full_chunked_text(Q, CHUNKS, A, [True] * M) == f"[skip] {Q} ### [1] [thought] [2] [thought] [3] [thought] [answer] {A}"


def test_truncation_drops_prompt_from_the_left(tok):
    stage = chunk_segments(Q, CHUNKS, A)[M]
    full_ids, full_labels = build_example(tok, stage, 128)
    ids, labels = build_example(tok, stage, 8)
    assert len(ids) == 8 and ids == full_ids[-8:] and labels == full_labels[-8:]
    assert labels[0] == IGNORE_INDEX  # at least one prompt token remains


def test_step_splitting_and_the_s_lt_m_rule():
    assert split_steps("A b. C d!\nE f? g h") == ["A b.", "C d!", "E f?", "g h"]
    assert split_steps("3.5 apples. Then") == ["3.5 apples.", "Then"]
    assert ensure_min_steps(["one two three four", "five"], 3) == ["one two", "three four", "five"]
    with pytest.raises(ValueError):
        ensure_min_steps(["one", "two"], 3)
    item = make_item("s", 0, Q, A, "Short one here.", 3)
    assert item.steps == ("Short", "one", "here.")


def test_average_chunking():
    assert average_boundaries(7, 3) == [3, 5]  # chunk sizes 3, 2, 2
    assert average_boundaries(3, 3) == [1, 2]
    assert chunks_from_boundaries(["a.", "b.", "c.", "d."], [1, 3]) == ["a.", "b. c.", "d."]
    with pytest.raises(ValueError):
        chunks_from_boundaries(["a.", "b."], [2])  # empty last chunk
