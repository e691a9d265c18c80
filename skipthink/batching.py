"""From TrainItems to padded training batches: which segment each item trains on, and in what order.

A *segment* is one training sequence (formats.Segment): FT's whole target, or one CWT chunk
`[j] c_j`, or the answer segment. An epoch is a list of batches of (item index, segment index)
units. Chunked methods put at most one segment of an item in a batch (the paper's mechanism:
fewer target tokens per step weight the core reasoning tokens more). `segment_sampling`:
- `expand` (default): an epoch holds every segment of every item, as K_max rounds; round r has
  each item's r-th segment in a seeded per-item order (items with fewer segments sit out later
  rounds). Rounds are batched separately, so a batch holds at most one segment per item.
- `random`: each epoch, each item draws one segment uniformly;
- `cycle`: item i trains segment (epoch + o_i) mod K_i, with a seeded offset o_i, so K_i
  consecutive epochs visit every segment once.
answer-only and FT have one segment per item. STT and SkipALL train, per epoch, each item's
skip sample instead of its plain CWT sample for a seeded `skip.mix` share of items
(`epoch_items`). Everything is a pure function of (seed, epoch), so a resumed run replays it
exactly. Batches are length-bucketed: units are shuffled, sorted by length inside windows of 64
batches, cut into batches, and the batch order is shuffled.
With per-item `order` keys (dataset.curriculum=easy_to_hard) each round instead runs in
ascending key order, easy to hard: the shuffled units are stably sorted by key (ties keep the
seeded order) and cut into consecutive batches — the same number of batches as without.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from skipthink.formats import IGNORE_INDEX, Segment, answer_only_segment, build_example, chunk_segments, ft_segment
from skipthink.items import TrainItem
from skipthink.methods import method as method_spec

BUCKET_WINDOW = 64  # batches per length-sorting window


def item_segments(method: str, item: TrainItem, num_chunks: int) -> list[Segment]:
    """Every training sequence an item yields under `method`."""
    if method_spec(method).chunked:
        return chunk_segments(item.question, item.chunks(num_chunks), item.answer, item.skip_mask)
    if method == "ft":
        return [ft_segment(item.question, item.rationale, item.answer)]
    return [answer_only_segment(item.question, item.answer)]


def epoch_items(items: Sequence[TrainItem], mix: float, seed: int, epoch: int) -> list[TrainItem]:
    """The samples an epoch trains: each item that has a skip sample uses it with probability
    `mix` (seeded per epoch and item), else its plain sample; items without one stay plain."""
    rng = random.Random(_mix(seed, epoch, 4))
    out = []
    for it in items:
        draw = rng.random()  # drawn for every item, so the choice of one never shifts another's
        out.append(it.skip_sample() if it.skip_alternative is not None and draw < mix else it)
    return out


def full_sequence(tokenizer, segments: Sequence[Segment], max_length: int) -> tuple[list[int], list[int]]:
    """All segments of one item as one sequence: loss on every target, as if each were trained.

    Segment prompts are prefixes of one another, so one causal pass equals all segments' losses
    (exactly, when nothing is truncated). Used for validation and for counting target tokens.
    """
    last = segments[-1]
    return build_example(tokenizer, Segment(segments[0].prompt, last.prompt[len(segments[0].prompt) :] + last.target, last.eos), max_length)


def _mix(*parts: int) -> int:
    return hash(parts) & 0x7FFFFFFF


def epoch_units(segment_counts: Sequence[int], sampling: str, seed: int, epoch: int) -> list[list[tuple[int, int]]]:
    """Rounds of (item, segment) units for one epoch; within a round each item appears at most once."""
    rng = random.Random(_mix(seed, epoch, 1))
    if sampling == "random":
        return [[(i, rng.randrange(k)) for i, k in enumerate(segment_counts)]]
    if sampling == "cycle":
        offsets = random.Random(_mix(seed, 2))
        return [[(i, (epoch + offsets.randrange(k)) % k) for i, k in enumerate(segment_counts)]]
    if sampling == "expand":
        orders = []
        for k in segment_counts:
            order = list(range(k))
            rng.shuffle(order)
            orders.append(order)
        return [[(i, o[r]) for i, o in enumerate(orders) if r < len(o)] for r in range(max(segment_counts, default=0))]
    raise ValueError(f"unknown segment_sampling {sampling!r}")


def shard(units: list, rank: int, world: int, rng: random.Random) -> list:
    """This process's share of a shuffled round; wraps around so every rank gets the same count."""
    units = list(units)
    rng.shuffle(units)
    if world == 1:
        return units
    per_rank = -(-len(units) // world)
    padded = units + units[: per_rank * world - len(units)]
    return padded[rank::world]


def bucket_batches(units: list, lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list]:
    """Cut already-shuffled units into batches of similar length (less padding)."""
    batches = []
    window = batch_size * BUCKET_WINDOW
    for start in range(0, len(units), window):
        part = sorted(range(start, min(start + window, len(units))), key=lambda k: lengths[k])
        batches += [[units[k] for k in part[b : b + batch_size]] for b in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def steps_per_epoch(segment_counts: Sequence[int], sampling: str, batch_size: int, world: int) -> int:
    """Optimisation steps of one epoch with these segment counts on each process (the same on
    every rank; independent of the seed)."""
    steps = 0
    for round_units in epoch_units(segment_counts, sampling, 0, 0):
        per_rank = -(-len(round_units) // world)
        steps += -(-per_rank // batch_size)
    return steps


@dataclass
class Batch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor

    @property
    def n_tokens(self) -> int:
        return int(self.attention_mask.sum())

    @property
    def n_target_tokens(self) -> int:
        return int((self.labels != IGNORE_INDEX).sum())

    def to(self, device) -> "Batch":
        return Batch(self.input_ids.to(device), self.attention_mask.to(device), self.labels.to(device))


def collate(examples: Sequence[tuple[list[int], list[int]]], pad_id: int) -> Batch:
    """Right-pad to the longest sequence of the batch (dynamic padding); labels -100 on padding."""
    width = max(len(ids) for ids, _ in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    attn = torch.zeros((len(examples), width), dtype=torch.long)
    for r, (x, y) in enumerate(examples):
        ids[r, : len(x)] = torch.tensor(x)
        labels[r, : len(y)] = torch.tensor(y)
        attn[r, : len(x)] = 1
    return Batch(ids, attn, labels)


class SegmentEncoder:
    """Tokenises segments once (`build_example`) and remembers them across epochs."""

    def __init__(self, tokenizer, max_length: int):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self._cache: dict[Segment, tuple[list[int], list[int]]] = {}

    def __call__(self, segment: Segment) -> tuple[list[int], list[int]]:
        out = self._cache.get(segment)
        if out is None:
            out = self._cache[segment] = build_example(self.tokenizer, segment, self.max_length)
        return out


def epoch_batches(
    segments: Sequence[Sequence[Segment]],
    encoder: SegmentEncoder,
    batch_size: int,
    sampling: str,
    seed: int,
    epoch: int,
    rank: int = 0,
    world: int = 1,
    order: Optional[Sequence] = None,
) -> list[list[tuple[list[int], list[int]]]]:
    """One epoch's batches (encoded, not yet padded) for this process; `order`: per-item curriculum keys."""
    rng = random.Random(_mix(seed, epoch, 3))
    batches = []
    for round_units in epoch_units([len(s) for s in segments], sampling, seed, epoch):
        mine = shard(round_units, rank, world, rng)
        if order is not None:
            mine.sort(key=lambda unit: order[unit[0]])
            batches += [[encoder(segments[i][j]) for i, j in mine[b : b + batch_size]] for b in range(0, len(mine), batch_size)]
            continue
        encoded = [encoder(segments[i][j]) for i, j in mine]
        batches += bucket_batches(encoded, [len(x) for x, _ in encoded], batch_size, rng)
    return batches
