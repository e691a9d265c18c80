"""Skip-data search logic with a crafted student: baseline check, exact masks, both check modes,
one batch per pass, and the exact prompts (chunks removed, next marker forced)."""

from __future__ import annotations

import pytest

from skipthink.config import SkipConfig
from skipthink.items import TrainItem
from skipthink.skipdata import candidate_positions, check_prompt, generate_skip_data, skip_rates

M = 4


def item(sid: str, answer: str) -> TrainItem:
    steps = tuple(f"Step {k} of {sid}." for k in range(1, 6))  # 5 steps -> AC boundaries (2, 3, 4)
    return TrainItem(sid, 0, f"Question {sid}?", answer, " ".join(steps), steps)


def wrong(answer: str) -> str:
    return "no" if answer == "yes" else "yes"


class Student:
    """Reads which chunks a prompt lacks and answers per item rule; in `generate` prompts (which
    end with a chunk marker) it writes the remaining chunks itself before answering."""

    def __init__(self, items, rule):
        self.items, self.rule = items, rule  # rule(sample_id, removed positions, later chunks given) -> correct?
        self.calls: list[list[str]] = []

    def __call__(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        self.calls.append(prompts)
        out = []
        for prompt in prompts:
            it = next(i for i in self.items if prompt.startswith(i.question))
            chunks = it.chunks(M)
            forced = prompt.rsplit(" ", 1)[1]
            upto = M if forced == "[answer]" else int(forced.strip("[]")) - 1
            removed = {j for j in range(1, upto + 1) if f"[{j}] {chunks[j - 1]}" not in prompt}
            later_given = forced == "[answer]"
            answer = it.answer if self.rule(it.sample_id, removed, later_given) else wrong(it.answer)
            written = "" if later_given else "".join(f" {chunks[j - 1]}" if j == upto + 1 else f" [{j}] {chunks[j - 1]}" for j in range(upto + 1, M + 1))
            out.append(f"{written} [answer] {answer}" if not later_given else f" {answer}")
        return out


ITEMS = [item("a", "yes"), item("b", "no"), item("c", "yes"), item("d", "no"), item("e", "yes")]
RULES = {
    "a": lambda removed, later: 3 not in removed,  # fine without chunk 2, not without chunk 3
    "b": lambda removed, later: not {2, 3} <= removed,  # either alone, not both: earlier removals stay removed
    "c": lambda removed, later: not removed,  # needs everything
    "d": lambda removed, later: later or not removed,  # copies the answer from the teacher's later chunks
    "e": lambda removed, later: False,  # wrong even with every chunk: fails the baseline
}


def student() -> Student:
    return Student(ITEMS, lambda sid, removed, later: RULES[sid](removed, later))


def test_generate_check_masks_baseline_and_batches():
    s = student()
    data = generate_skip_data(ITEMS, s, num_chunks=M, answer_type="yes_no", cfg=SkipConfig())
    masks = [x.skip_mask for x in data.samples]
    assert masks == [(False, True, False, False), (False, True, False, False), (False,) * 4, (False,) * 4, (False,) * 4]
    assert [x.baseline_correct for x in data.samples] == [True, True, True, True, False]
    assert data.samples[0].to_row() == {
        "sample_id": "a", "completion_index": 0, "skip_mask": [False, True, False, False], "n_skipped": 1, "checks": 3, "baseline_correct": True,
    }
    assert data.samples[4].checks == 1  # a baseline failure is never checked again
    # Rates over the four items that passed the baseline.
    assert data.skip_rates == pytest.approx([0.0, 0.5, 0.0, 0.0])
    assert data.summary() == {"items": 5, "baseline_failed": 1, "skipped_chunks": 2, "skip_rates": [0.0, 0.5, 0.0, 0.0]}
    # One decoder call for the baseline (every item), then one per candidate position (items that passed).
    assert [len(c) for c in s.calls] == [5, 4, 4]
    chunks = ITEMS[0].chunks(M)
    assert s.calls[0][0] == f"Question a? ### [1] {chunks[0]} [2] {chunks[1]} [3] {chunks[2]} [4] {chunks[3]} [answer]"
    # generate: chunk 2 left out with its marker, the student goes on from the next marker.
    assert s.calls[1][0] == f"Question a? ### [1] {chunks[0]} [3]"
    # Position 3 keeps b's accepted removal of chunk 2; c's rejected one is back.
    b2, c2 = ITEMS[1].chunks(M), ITEMS[2].chunks(M)
    assert s.calls[2][1] == f"Question b? ### [1] {b2[0]} [4]"
    assert s.calls[2][2] == f"Question c? ### [1] {c2[0]} [2] {c2[1]} [4]"
    assert not any("[thought]" in p or p.startswith("[skip]") for c in s.calls for p in c)


def test_teacher_forced_check_is_fooled_by_copying_where_generate_is_not():
    s = student()
    data = generate_skip_data(ITEMS, s, num_chunks=M, answer_type="yes_no", cfg=SkipConfig(check="teacher_forced"))
    # d copies its answer from the teacher's last chunk, so teacher-forcing lets chunks 2 and 3 go.
    assert data.samples[3].skip_mask == (False, True, True, False)
    chunks = ITEMS[0].chunks(M)
    assert s.calls[1][0] == f"Question a? ### [1] {chunks[0]} [3] {chunks[2]} [4] {chunks[3]} [answer]"


def test_all_candidates_and_progress():
    seen = []
    data = generate_skip_data(ITEMS, student(), num_chunks=M, answer_type="yes_no", cfg=SkipConfig(candidates="all"),
                              progress=lambda done, total: seen.append((done, total)))
    assert [x.skip_mask for x in data.samples][:3] == [(True, True, False, True), (True, True, False, True), (False,) * 4]
    assert [x.checks for x in data.samples] == [5, 5, 5, 5, 1]
    assert seen == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]


def test_check_prompt_and_helpers():
    chunks = ["x.", "y.", "z."]
    assert check_prompt("Q?", chunks, [False] * 3, None, "generate") == "Q? ### [1] x. [2] y. [3] z. [answer]"
    assert check_prompt("Q?", chunks, [False] * 3, 2, "generate") == "Q? ### [1] x. [3]"
    assert check_prompt("Q?", chunks, [False, True, False], 3, "generate") == "Q? ### [1] x. [answer]"
    assert check_prompt("Q?", chunks, [False] * 3, 2, "teacher_forced") == "Q? ### [1] x. [3] z. [answer]"
    assert candidate_positions(4, "medium") == [2, 3]
    assert candidate_positions(2, "medium") == []
    assert candidate_positions(3, "all") == [1, 2, 3]
    assert skip_rates([[True, False], [True, True]], 2) == [1.0, 0.5]
    assert skip_rates([], 3) == [0.0, 0.0, 0.0]


def test_decoder_must_answer_every_prompt():
    with pytest.raises(ValueError, match="5 prompts"):
        generate_skip_data(ITEMS, lambda prompts, n: [], num_chunks=M, answer_type="yes_no", cfg=SkipConfig())


def test_position_gate_undoes_a_position_few_items_can_skip():
    s = student()
    data = generate_skip_data(ITEMS, s, num_chunks=M, answer_type="yes_no", cfg=SkipConfig(min_position_rate=0.6))
    # Position 2 passes on a and b only (2 of 4 checked): gated, so nobody skips it, and position 3
    # is checked with chunk 2 back in place (b then passes alone: 1 of 4, gated too).
    assert [x.skip_mask for x in data.samples] == [(False,) * 4] * 5
    assert data.gated == {2: 0.5, 3: 0.25}
    b2 = ITEMS[1].chunks(M)
    assert s.calls[2][1] == f"Question b? ### [1] {b2[0]} [2] {b2[1]} [4]"
    assert data.summary()["gated_positions"] == {"2": 0.5, "3": 0.25}
    assert data.skip_rates == [0.0] * 4


def test_position_gate_at_the_share_keeps_the_position():
    data = generate_skip_data(ITEMS, student(), num_chunks=M, answer_type="yes_no", cfg=SkipConfig(min_position_rate=0.5))
    # 2 of 4 is not below 0.5: the same masks as without a gate; position 3 (0 of 4) is gated.
    assert [x.skip_mask for x in data.samples][:2] == [(False, True, False, False)] * 2
    assert data.gated == {3: 0.0}
    ungated = generate_skip_data(ITEMS, student(), num_chunks=M, answer_type="yes_no", cfg=SkipConfig())
    assert ungated.gated == {} and "gated_positions" not in ungated.summary()


def test_position_gate_enters_the_fingerprint_only_when_on():
    # Through the stage's own spec, so the test fails if the stage stops dropping the default.
    from skipthink.config import PipelineConfig
    from tasks.skipdata import SPEC

    def section(**skip):
        return SPEC.section(PipelineConfig.model_validate({"skip": skip}), None)

    off, on = section(), section(min_position_rate=0.9)
    assert "min_position_rate" not in off and "mix" not in off  # homes from before the gate keep their cache
    assert on == dict(off, min_position_rate=0.9)
    with pytest.raises(ValueError, match="min_position_rate"):
        SkipConfig(min_position_rate=1.5)
