"""Skip-data generation (docs/DESIGN.md §1): which chunks can the CWT student do without?

Only items the CWT-SBC student answers correctly with every chunk present take part (the
*baseline check*: the teacher's chunks, then the student decodes the answer). For each of them
the candidate chunks are tried in order; chunk j is tentatively removed — removals accepted
earlier stay removed — and the removal is kept only if the answer is still correct:
- `check: generate` (default): the prompt is the question and the kept teacher chunks before
  j, then the *next* marker (`[j+1]`, or `[answer]` after the last chunk); the student writes
  the remaining chunks and the answer itself. A removal that only survives because later
  teacher chunks restate the answer does not pass.
- `check: teacher_forced`: every remaining teacher chunk stays in the prompt and only the
  answer is decoded after a forced `[answer]`.
Each item yields one skip sample (possibly with nothing skipped). All items are checked at the
same position together, so each position is one batched decoding pass.
With `min_position_rate` > 0 a position whose removals pass on fewer than that share of the
checked items is *gated*: its removals are undone before the next position is checked (so later
checks see exactly the chunks STT will train without), and no item skips there.

Removed, not replaced: for the check, chunk j and its marker are *left out* (the paper's
wording: the chunk is removed for the check, and once found unnecessary it is replaced by
`[j] [thought]` in the STT data). The CWT student was never trained on `[thought]` — for a
scratch student its embedding is untrained noise — so a placeholder would change what the check
asks; leaving the chunk out and forcing the next marker asks exactly "can the student go on
without chunk j". The check prompt has no `[skip]` flag either: that flag belongs to the STT
samples built from the resulting masks (`formats.chunk_segments(..., skip_mask)`).

Decoding is a callable (`Decoder`: prompts, max_new_tokens -> continuations), so the search
logic is testable with a crafted decoder; `student_decoder` is the real one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from skipthink.datasets.scoring import extract_answer, is_correct
from skipthink.config import SkipConfig
from skipthink.formats import ANSWER, chunk_marker, question_prompt
from skipthink.generation import generate
from skipthink.items import TrainItem

Decoder = Callable[[list[str], int], list[str]]


@dataclass(frozen=True)
class SkipSample:
    sample_id: str
    completion_index: int
    skip_mask: tuple[bool, ...]  # True where chunk j (1-based position j) is written `[j] [thought]`
    checks: int  # answer checks made for this item (the baseline included)
    baseline_correct: bool  # right with nothing removed; False = no skip sample

    @property
    def n_skipped(self) -> int:
        return sum(self.skip_mask)

    def to_row(self) -> dict:
        return {
            "sample_id": self.sample_id,
            "completion_index": self.completion_index,
            "skip_mask": list(self.skip_mask),
            "n_skipped": self.n_skipped,
            "checks": self.checks,
            "baseline_correct": self.baseline_correct,
        }


@dataclass(frozen=True)
class SkipData:
    samples: list[SkipSample]
    skip_rates: list[float]  # per chunk position 1..M: share of baseline-passing items whose chunk was skipped
    gated: dict[int, float] = field(default_factory=dict)  # position -> share that passed, where below min_position_rate

    def summary(self) -> dict:
        passed = [s for s in self.samples if s.baseline_correct]
        out = {
            "items": len(self.samples),
            "baseline_failed": len(self.samples) - len(passed),
            "skipped_chunks": sum(s.n_skipped for s in passed),
            "skip_rates": [round(r, 4) for r in self.skip_rates],
        }
        if self.gated:
            out["gated_positions"] = {str(j): round(r, 4) for j, r in self.gated.items()}
        return out


def candidate_positions(num_chunks: int, candidates: str) -> list[int]:
    """1-based chunk positions tried for skipping: `medium` = 2..M-1, `all` = 1..M."""
    if candidates == "medium":
        return list(range(2, num_chunks))
    if candidates == "all":
        return list(range(1, num_chunks + 1))
    raise ValueError(f"unknown skip candidates {candidates!r}; choose medium or all")


def check_prompt(question: str, chunks: Sequence[str], removed: Sequence[bool], position: Optional[int], check: str) -> str:
    """The prompt that checks removing chunk `position` (1-based; None = the baseline check).

    Chunks marked in `removed` (and `position`) are left out with their markers. `generate`
    stops after the chunks before `position` and ends with the next marker; `teacher_forced`
    (and the baseline) keeps every other chunk and ends with `[answer]`.
    """
    m = len(chunks)
    gone = list(removed)
    if position is not None:
        gone[position - 1] = True
    last = m if position is None or check == "teacher_forced" else position - 1
    text = question_prompt(question)
    for j in range(1, last + 1):
        if not gone[j - 1]:
            text += f" {chunk_marker(j)} {chunks[j - 1]}"
    nxt = ANSWER if last == m or position == m else chunk_marker(position + 1)
    return f"{text} {nxt}"


def skip_rates(masks: Sequence[Sequence[bool]], num_chunks: int) -> list[float]:
    """Share of masks with position j skipped, for j = 1..M (zeros when there are no masks)."""
    if not masks:
        return [0.0] * num_chunks
    return [sum(bool(m[j]) for m in masks) / len(masks) for j in range(num_chunks)]


def _answers_correct(prompts: list[str], items: Sequence[TrainItem], decode: Decoder, max_new_tokens: int, answer_type: str, letters) -> list[bool]:
    decoded = decode(prompts, max_new_tokens)
    if len(decoded) != len(prompts):
        raise ValueError(f"decoder returned {len(decoded)} continuations for {len(prompts)} prompts")
    out = []
    for prompt, item, text in zip(prompts, items, decoded):
        # The forced marker is part of the output the answer is read from.
        forced = prompt[prompt.rindex(" [") + 1 :]
        predicted = extract_answer(forced + text, answer_type, prefix=ANSWER, letters=letters)
        out.append(is_correct(predicted, item.answer, answer_type))
    return out


def generate_skip_data(
    items: Sequence[TrainItem],
    decode: Decoder,
    *,
    num_chunks: int,
    answer_type: str,
    cfg: SkipConfig,
    letters: Optional[str] = None,
    progress: Optional[Callable[[int, int], None]] = None,
) -> SkipData:
    """One skip sample per item, in item order. `progress(done, total)` is called per check pass.

    `letters` is the multiple-choice letter set for `answer_type == "letter"` (scoring's default
    when None).
    """
    positions = candidate_positions(num_chunks, cfg.candidates)
    chunks = [item.chunks(num_chunks) for item in items]
    masks = [[False] * num_chunks for _ in items]
    baseline = _answers_correct(
        [check_prompt(it.question, c, masks[i], None, cfg.check) for i, (it, c) in enumerate(zip(items, chunks))],
        items, decode, cfg.max_answer_tokens, answer_type, letters,
    )
    if progress is not None:
        progress(1, len(positions) + 1)
    taking_part = [i for i, ok in enumerate(baseline) if ok]
    budget = cfg.max_new_tokens if cfg.check == "generate" else cfg.max_answer_tokens
    gated: dict[int, float] = {}
    for done, j in enumerate(positions, start=2):
        prompts = [check_prompt(items[i].question, chunks[i], masks[i], j, cfg.check) for i in taking_part]
        ok = _answers_correct(prompts, [items[i] for i in taking_part], decode, budget, answer_type, letters) if prompts else []
        rate = sum(ok) / len(ok) if ok else 0.0
        if ok and rate < cfg.min_position_rate:
            gated[j] = rate  # nobody skips here; later positions are checked with this chunk present
            ok = [False] * len(ok)
        for i, good in zip(taking_part, ok):
            if good:
                masks[i][j - 1] = True
        if progress is not None:
            progress(done, len(positions) + 1)
    checks = 1 + len(positions)
    samples = [
        SkipSample(item.sample_id, item.completion_index, tuple(mask), checks if ok else 1, ok) for item, mask, ok in zip(items, masks, baseline)
    ]
    return SkipData(samples, skip_rates([masks[i] for i in taking_part], num_chunks), gated)


def student_decoder(model, tokenizer, cfg: SkipConfig) -> Decoder:
    """Greedy decoding with the CWT student, `cfg.batch_size` prompts at a time."""

    def decode(prompts: list[str], max_new_tokens: int) -> list[str]:
        outs = generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=cfg.batch_size)
        return [o.text for o in outs]

    return decode
