"""Sequence formats of docs/DESIGN.md §1 as (prompt text, target text) pairs, and their tokenisation.

Loss masks are explicit data: `build_example` returns `(input_ids, labels)` with -100 on every
prompt token, so a test can print exactly which tokens carry loss.

Two choices the design leaves open, made here:
- Only the final stage of a sequence (the answer stage, or the whole target of answer-only /
  FT) ends with EOS. A chunk stage's target is ` [j] c_j` with no EOS: the next stage's target
  starts with ` [j+1]`, which is what teaches the model to keep writing.
- In skip-thinking samples, the placeholders `[i] [thought]` of skipped chunks that come
  right before a kept chunk (or the answer) are part of *that* stage's target. The student
  has to write the placeholders itself at inference — `[2] [thought]` is two tokens instead
  of a whole chunk, which is where the speedup comes from — so they must carry loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

SEP = "###"
FT_ARROW = "-->"
ANSWER = "[answer]"
SKIP = "[skip]"
THOUGHT = "[thought]"
IGNORE_INDEX = -100


def chunk_marker(j: int) -> str:
    """1-based chunk marker `[j]`."""
    return f"[{j}]"


def special_tokens(num_chunks: int) -> list[str]:
    """Every token the formats need as a single vocabulary entry."""
    return [SEP, FT_ARROW, ANSWER, SKIP, THOUGHT, *(chunk_marker(j) for j in range(1, num_chunks + 1))]


@dataclass(frozen=True)
class Segment:
    """One training sequence: loss only on `target`; `eos` appends the end-of-sequence token."""

    prompt: str
    target: str
    eos: bool


def question_prompt(question: str, skip: bool = False) -> str:
    return f"{SKIP + ' ' if skip else ''}{question} {SEP}"


def answer_only_segment(question: str, answer: str) -> Segment:
    return Segment(question_prompt(question), f" {answer}", eos=True)


def ft_segment(question: str, rationale: str, answer: str) -> Segment:
    return Segment(question_prompt(question), f" {rationale.strip()} {FT_ARROW} {answer}", eos=True)


def _chunk_text(j: int, chunk: str, skipped: bool) -> str:
    return f" {chunk_marker(j)} {THOUGHT if skipped else chunk}"


def chunk_segments(question: str, chunks: Sequence[str], answer: str, skip_mask: Optional[Sequence[bool]] = None) -> list[Segment]:
    """All stages of one chunked example, in order; the last is the answer stage.

    Without a skip mask this is CWT (stages 1..M, answer). With one it is a skip-thinking
    sample: prompts start with `[skip]`, skipped chunks appear as `[j] [thought]`, and a stage
    exists only for each kept chunk and the answer.
    """
    skip = skip_mask is not None
    mask = list(skip_mask) if skip else [False] * len(chunks)
    if len(mask) != len(chunks):
        raise ValueError(f"skip_mask has {len(mask)} entries for {len(chunks)} chunks")
    stages: list[Segment] = []
    written = question_prompt(question, skip=skip)
    pending = ""  # placeholders of skipped chunks not yet part of a target
    for j, (chunk, skipped) in enumerate(zip(chunks, mask), start=1):
        piece = _chunk_text(j, chunk, skipped)
        if skipped:
            pending += piece
            continue
        stages.append(Segment(written, pending + piece, eos=False))
        written += pending + piece
        pending = ""
    stages.append(Segment(written, f"{pending} {ANSWER} {answer}", eos=True))
    return stages


def full_chunked_text(question: str, chunks: Sequence[str], answer: str, skip_mask: Optional[Sequence[bool]] = None) -> str:
    """The whole sequence `q ### [1] c_1 … [M] c_M [answer] a` (without EOS)."""
    last = chunk_segments(question, chunks, answer, skip_mask)[-1]
    return last.prompt + last.target


def build_example(tokenizer, stage: Segment, max_length: int) -> tuple[list[int], list[int]]:
    """Tokenise prompt and target separately (so the loss boundary is exact) and mask the prompt.

    Over-long sequences lose prompt tokens from the left; a target that alone reaches
    max_length keeps its start (at least one prompt token always remains to predict from).
    """
    prompt_ids = tokenizer.encode(stage.prompt, add_special_tokens=False)
    target_ids = tokenizer.encode(stage.target, add_special_tokens=False)
    if stage.eos:
        target_ids = target_ids + [tokenizer.eos_token_id]
    if len(target_ids) >= max_length:
        target_ids = target_ids[: max_length - 1]
    room = max_length - len(target_ids)
    if len(prompt_ids) > room:
        prompt_ids = prompt_ids[len(prompt_ids) - room :]
    input_ids = prompt_ids + target_ids
    labels = [IGNORE_INDEX] * len(prompt_ids) + target_ids
    return input_ids, labels
