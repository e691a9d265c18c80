"""Search-based chunking (SBC, docs/DESIGN.md §1.2): boundary moves scored by the current student.

The score of a chunking is the mean over its M chunks of each chunk's mean token loss, every
chunk conditioned on its CWT prompt. Attention is causal, so ONE forward pass over
`q ### [1] c_1 … [M] c_M` yields every chunk's loss (the answer stage does not enter the score,
so it is left out of the scored sequence).

Two searches over single boundary moves (one boundary one step left or right, never emptying a
chunk), both scoring the proposals of ALL items of a step together in large no-grad batches:
- `greedy_search` (docs/DESIGN.md §1.2): a round proposes every move of every still-improving
  item; per item the best one is accepted when it lowers the score by more than `eta` relative;
  an item with no accepted move drops out. It stops when no item moved or after `max_rounds`.
- `anneal_search`: simulated annealing. Each step proposes one random move per item and accepts
  it with the Metropolis rule on the relative score change, at a temperature that cools
  geometrically; each item ends on the best chunking it visited (if that beats its start by
  more than `eta` relative). Uphill moves let it leave local optima greedy stops in.

The searches are independent of how scores are computed: they take any scorer
`(items, boundaries) -> scores`, so tests can plant a known optimum. `LossScorer` is the real one;
it shares the forward pass of the token prefix the chunkings of one item have in common.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from skipthink.config import ChunkingConfig
from skipthink.formats import chunk_segments
from skipthink.items import TrainItem
from skipthink.text import chunks_from_boundaries

Boundaries = tuple[int, ...]
# Scores one chunking per (item, boundaries) pair; lower is better.
Scorer = Callable[[Sequence[TrainItem], Sequence[Boundaries]], list[float]]


@dataclass(frozen=True)
class ChunkingResult:
    boundaries: Boundaries
    score: float  # of `boundaries`
    moves: int  # accepted boundary moves (annealing: of its walk, which may end back near the start)
    uphill: int = 0  # accepted moves that raised the score (annealing only)


def neighbour_chunkings(boundaries: Boundaries, num_steps: int) -> list[Boundaries]:
    """Every chunking one boundary move away: each boundary one step left or right, chunks non-empty."""
    edges = (0, *boundaries, num_steps)
    out = []
    for i, b in enumerate(boundaries):
        for nb in (b - 1, b + 1):
            if edges[i] < nb < edges[i + 2]:
                out.append(boundaries[:i] + (nb,) + boundaries[i + 1 :])
    return out


def relative_gain(old: float, new: float) -> float:
    return (old - new) / old if old > 0 else -math.inf


class _ScoreMemo:
    """Scores of (item index, boundaries) seen in this search: the model is fixed during a refresh,
    so a chunking visited twice is scored once; each `fill` sends all new pairs in ONE scorer call."""

    def __init__(self, items: Sequence[TrainItem], scorer: Scorer):
        self.items, self.scorer, self.known = items, scorer, {}

    def fill(self, pairs: Sequence[tuple[int, Boundaries]]) -> None:
        todo = list(dict.fromkeys(p for p in pairs if p not in self.known))
        if todo:
            scores = self.scorer([self.items[i] for i, _ in todo], [b for _, b in todo])
            self.known.update(zip(todo, scores))

    def __getitem__(self, pair: tuple[int, Boundaries]) -> float:
        return self.known[pair]


def greedy_search(
    items: Sequence[TrainItem], start: Sequence[Boundaries], scorer: Scorer, eta: float, max_rounds: int
) -> list[ChunkingResult]:
    """Greedy SBC for all items at once; `start` holds each item's current boundaries."""
    current = [tuple(b) for b in start]
    memo = _ScoreMemo(items, scorer)
    moves = [0] * len(items)
    active = list(range(len(items))) if math.isfinite(eta) else []
    # The first call also scores the starts, so their forward passes are shared with their moves'.
    pending = list(enumerate(current))
    for _ in range(max_rounds):
        proposals = [(i, cand) for i in active for cand in neighbour_chunkings(current[i], len(items[i].steps))]
        memo.fill(pending + proposals)
        pending = []
        best: dict[int, Boundaries] = {}
        for i, cand in proposals:
            if i not in best or memo[i, cand] < memo[i, best[i]]:
                best[i] = cand
        active = []
        for i, cand in best.items():
            if relative_gain(memo[i, current[i]], memo[i, cand]) > eta:
                current[i] = cand
                moves[i] += 1
                active.append(i)
        if not active:
            break
    memo.fill(pending)  # no round ran (max_rounds = 0)
    return [ChunkingResult(b, float(memo[i, b]), m) for i, (b, m) in enumerate(zip(current, moves))]


def anneal_search(
    items: Sequence[TrainItem],
    start: Sequence[Boundaries],
    scorer: Scorer,
    eta: float,
    t0: float,
    cooling: float,
    steps: int,
    seed: int,
) -> list[ChunkingResult]:
    """Simulated annealing for all items at once; each item returns the best chunking it visited.

    At step k the temperature is T = t0·cooling^k. A proposal with relative gain g = (old-new)/old
    is accepted when g ≥ 0, else with probability exp(g/T) (T = 0: never). The best chunking seen
    replaces the start only when it lowers the start's score by more than `eta` relative.
    """
    rng = random.Random(seed)
    current = [tuple(b) for b in start]
    memo = _ScoreMemo(items, scorer)
    memo.fill(list(enumerate(current)))
    best = list(current)
    moves, uphill = [0] * len(items), [0] * len(items)
    for k in range(steps if math.isfinite(eta) else 0):
        temperature = t0 * cooling**k
        proposals = []
        for i in range(len(items)):
            neighbours = neighbour_chunkings(current[i], len(items[i].steps))
            if neighbours:
                proposals.append((i, rng.choice(neighbours)))
        if not proposals:
            break
        memo.fill(proposals)
        for i, cand in proposals:
            gain = relative_gain(memo[i, current[i]], memo[i, cand])
            if gain >= 0 or (temperature > 0 and rng.random() < math.exp(gain / temperature)):
                current[i] = cand
                moves[i] += 1
                uphill[i] += gain < 0
                if memo[i, cand] < memo[i, best[i]]:
                    best[i] = cand
    results = []
    for i, b in enumerate(start):
        final = best[i] if relative_gain(memo[i, tuple(b)], memo[i, best[i]]) > eta else tuple(b)
        results.append(ChunkingResult(final, float(memo[i, final]), moves[i], uphill[i]))
    return results


@dataclass(frozen=True)
class ScoredSequence:
    input_ids: list[int]
    chunk_of_token: list[int]  # chunk index (0-based) a target token belongs to, -1 elsewhere
    # The texts the ids are made of (prompt, then each chunk's target) and their ids; None when the
    # sequence was left-truncated (its positions shifted, so it shares no prefix with the others).
    pieces: Optional[tuple[str, ...]] = None
    piece_ids: Optional[tuple[list[int], ...]] = None


def shared_prefix(a: ScoredSequence, b: ScoredSequence) -> int:
    """Leading positions where `a` and `b` hold the same token in the same chunk (0 if either is truncated).

    Whole pieces are compared as texts (same text, same ids, same chunk), the first differing
    piece token by token, so this costs M+1 string comparisons, not a token-by-token walk.
    """
    if a.pieces is None or b.pieces is None:
        return 0
    n = 0
    for ta, tb, ia, ib in zip(a.pieces, b.pieces, a.piece_ids, b.piece_ids):
        if ta == tb:
            n += len(ia)
            continue
        for x, y in zip(ia, ib):
            if x != y:
                break
            n += 1
        break
    return n


def _token_losses(model, hidden: torch.Tensor, ids: torch.Tensor, owner: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss of predicting each next token, and the chunk that token belongs to (-1: not scored).

    The LM head runs on the scored positions only (as in training's `TargetLoss`): the question
    and the padding need no logits.
    """
    next_owner = owner[:, 1:]
    keep = next_owner >= 0
    logits = model.get_output_embeddings()(hidden[:, :-1][keep])
    losses = torch.zeros(keep.shape, device=hidden.device)
    losses[keep] = F.cross_entropy(logits.float(), ids[:, 1:][keep], reduction="none")
    return losses, next_owner


def _per_chunk(losses: torch.Tensor, next_owner: torch.Tensor, num_chunks: int, cumulative: bool = False):
    """Per-chunk loss sums and token counts (B, M); `cumulative` gives them up to each position (B, T, M)."""
    valid = (next_owner >= 0).float()
    onehot = F.one_hot(next_owner.clamp(min=0), num_chunks).float() * valid.unsqueeze(-1)
    sums, counts = onehot * losses.unsqueeze(-1), onehot
    if cumulative:
        return sums.cumsum(1), counts.cumsum(1)
    return sums.sum(1), counts.sum(1)


def _mean_of_chunk_means(sums: torch.Tensor, counts: torch.Tensor) -> list[float]:
    present = (counts > 0).float()
    return ((sums / counts.clamp(min=1)).sum(1) / present.sum(1).clamp(min=1)).tolist()


class LossScorer:
    """Mean per-chunk token loss under a causal LM, exactly as one forward pass per chunking gives it.

    Chunk texts are tokenised once and cached (a boundary move changes only two chunks, so
    most pieces repeat across proposals). A chunk's tokens are exactly its CWT stage target
    ` [j] c_j`, tokenised on its own like `formats.build_example` does. Sequences longer than
    `max_length` lose tokens from the left (the question first).

    With `share_prefix` (the default) the chunkings of one item in a call are scored around an
    anchor: the one sharing the longest token prefixes with the others. The anchor runs in full,
    keeping its key/value cache; every other chunking runs only from where it departs from the
    anchor, on the anchor's cache of the shared prefix, and takes the shared tokens' losses from
    the anchor's pass. Causal attention makes this exact (same tokens at the same positions have
    the same keys, values and losses). A proposal from a greedy round shares the question and the
    chunks before the moved boundary. Left-truncated sequences run in full.
    """

    def __init__(self, model, tokenizer, num_chunks: int, max_length: int, batch_size: int, share_prefix: bool = True):
        self.model = model
        self.tokenizer = tokenizer
        self.num_chunks = num_chunks
        self.max_length = max_length
        self.batch_size = batch_size
        self.share_prefix = share_prefix
        self._ids: dict[str, list[int]] = {}

    def _pieces(self, item: TrainItem, boundaries: Boundaries) -> tuple[str, ...]:
        """The prompt `q ###`, then each chunk's target ` [j] c_j`."""
        chunks = chunks_from_boundaries(list(item.steps), list(boundaries))
        stages = chunk_segments(item.question, chunks, item.answer)[: self.num_chunks]
        return (stages[0].prompt, *(s.target for s in stages))

    def _tokenise(self, texts: Sequence[str]) -> None:
        """Tokenise the texts not seen yet in one batched tokenizer call (one call per text is slower)."""
        new = list(dict.fromkeys(t for t in texts if t not in self._ids))
        if new:
            self._ids.update(zip(new, self.tokenizer(new, add_special_tokens=False)["input_ids"]))

    def sequence(self, item: TrainItem, boundaries: Boundaries, pieces: Optional[tuple[str, ...]] = None) -> ScoredSequence:
        pieces = pieces or self._pieces(item, boundaries)
        self._tokenise(pieces)
        piece_ids = tuple(self._ids[p] for p in pieces)
        ids = list(piece_ids[0])
        owner = [-1] * len(ids)
        for j, piece in enumerate(piece_ids[1:]):
            ids += piece
            owner += [j] * len(piece)
        cut = max(0, len(ids) - self.max_length)
        if cut:
            return ScoredSequence(ids[cut:], owner[cut:])
        return ScoredSequence(ids, owner, pieces, piece_ids)

    @torch.no_grad()
    def __call__(self, items: Sequence[TrainItem], boundaries: Sequence[Boundaries]) -> list[float]:
        pieces = [self._pieces(it, b) for it, b in zip(items, boundaries)]
        self._tokenise([p for ps in pieces for p in ps])
        seqs = [self.sequence(it, b, ps) for it, b, ps in zip(items, boundaries, pieces)]
        was_training = self.model.training
        self.model.eval()
        try:
            if self.share_prefix:
                return self._score_sharing_prefixes(items, seqs)
            scores = [0.0] * len(seqs)
            order = sorted(range(len(seqs)), key=lambda k: len(seqs[k].input_ids))
            for idx in self._batches(order):
                sums, counts = _per_chunk(*self._full_pass([seqs[k] for k in idx])[:2], self.num_chunks)
                for k, s in zip(idx, _mean_of_chunk_means(sums, counts)):
                    scores[k] = s
            return scores
        finally:
            self.model.train(was_training)

    def _batches(self, order: list[int]) -> list[list[int]]:
        return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    @property
    def _device(self):
        return next(self.model.parameters()).device

    def _padded(self, rows: list[list[int]], fill: int) -> torch.Tensor:
        width = max(len(r) for r in rows)
        return torch.tensor([r + [fill] * (width - len(r)) for r in rows], dtype=torch.long, device=self._device)

    def _full_pass(self, seqs: list[ScoredSequence], keep_cache: bool = False):
        """Forward pass of whole sequences (right-padded): token losses, their chunks, and the cache."""
        ids = self._padded([s.input_ids for s in seqs], self.tokenizer.pad_token_id)
        owner = self._padded([s.chunk_of_token for s in seqs], -1)
        attn = self._padded([[1] * len(s.input_ids) for s in seqs], 0)
        out = self.model.base_model(input_ids=ids, attention_mask=attn, use_cache=keep_cache)
        losses, next_owner = _token_losses(self.model, out.last_hidden_state, ids, owner)
        return losses, next_owner, (out.past_key_values if keep_cache else None)

    def _score_sharing_prefixes(self, items: Sequence[TrainItem], seqs: list[ScoredSequence]) -> list[float]:
        anchor_of, cached = self._plan(items, seqs)
        scores = [0.0] * len(seqs)
        anchors = sorted((k for k in range(len(seqs)) if anchor_of[k] == k), key=lambda k: len(seqs[k].input_ids))
        followers_of: dict[int, list[int]] = {}
        for k, a in enumerate(anchor_of):
            if a != k:
                followers_of.setdefault(a, []).append(k)
        for batch in self._batches(anchors):
            losses, next_owner, cache = self._full_pass([seqs[a] for a in batch], keep_cache=bool(followers_of.keys() & set(batch)))
            for a, s in zip(batch, _mean_of_chunk_means(*_per_chunk(losses, next_owner, self.num_chunks))):
                scores[a] = s
            # (row of the anchor in this batch, follower), shortest suffix first so padding stays small
            followers = sorted(
                ((row, k) for row, a in enumerate(batch) for k in followers_of.get(a, [])),
                key=lambda rk: len(seqs[rk[1]].input_ids) - cached[rk[1]],
            )
            if not followers:
                continue
            cum_sums, cum_counts = _per_chunk(losses, next_owner, self.num_chunks, cumulative=True)
            for start in range(0, len(followers), self.batch_size):
                rows, ks = zip(*followers[start : start + self.batch_size])
                # The anchor's losses at positions 0..cached-1 cover the shared targets 1..cached; the suffix the rest.
                at = torch.tensor([cached[k] - 1 for k in ks], device=self._device)
                suffix_sums, suffix_counts = self._suffix_pass(cache, list(rows), [seqs[k] for k in ks], [cached[k] for k in ks])
                sums, counts = cum_sums[list(rows), at] + suffix_sums, cum_counts[list(rows), at] + suffix_counts
                for k, s in zip(ks, _mean_of_chunk_means(sums, counts)):
                    scores[k] = s
        return scores

    def _plan(self, items: Sequence[TrainItem], seqs: list[ScoredSequence]) -> tuple[list[int], list[int]]:
        """Per sequence its anchor (itself: it runs in full) and how many leading tokens come from the anchor's cache.

        Chunkings of the same item are grouped; a group's anchor is the member with the most
        tokens in common with the others.
        """
        groups: dict[tuple, list[int]] = {}
        for k, it in enumerate(items):
            groups.setdefault(it.key, []).append(k)
        anchor_of, cached = list(range(len(seqs))), [0] * len(seqs)
        for members in groups.values():
            overlap = {}
            for i, a in enumerate(members):
                for b in members[i + 1 :]:
                    overlap[a, b] = overlap[b, a] = shared_prefix(seqs[a], seqs[b])
            anchor = max(members, key=lambda a: sum(overlap[a, b] for b in members if b != a))
            for k in members:
                # The last shared token is fed again: its output predicts the first token that differs.
                n = overlap[anchor, k] - 1 if k != anchor else 0
                if n >= 1:
                    anchor_of[k], cached[k] = anchor, n
        return anchor_of, cached

    def _suffix_pass(self, cache, rows: list[int], seqs: list[ScoredSequence], cached: list[int]):
        """Per-chunk sums of the tokens after each sequence's cached prefix, run on the anchors' cache rows."""
        width = max(cached)
        index = torch.tensor(rows, device=self._device)
        past = [(keys[index, :, :width], values[index, :, :width]) for keys, values, *_ in cache]
        ids = self._padded([s.input_ids[c:] for s, c in zip(seqs, cached)], self.tokenizer.pad_token_id)
        owner = self._padded([s.chunk_of_token[c:] for s, c in zip(seqs, cached)], -1)
        suffix_mask = self._padded([[1] * (len(s.input_ids) - c) for s, c in zip(seqs, cached)], 0)
        prefix_mask = (torch.arange(width, device=self._device)[None, :] < torch.tensor(cached, device=self._device)[:, None]).long()
        positions = (torch.tensor(cached, device=self._device)[:, None] + torch.arange(ids.shape[1], device=self._device)[None, :]) * suffix_mask
        out = self.model.base_model(
            input_ids=ids, attention_mask=torch.cat([prefix_mask, suffix_mask], 1), position_ids=positions,
            past_key_values=DynamicCache(past), use_cache=True,
        )
        return _per_chunk(*_token_losses(self.model, out.last_hidden_state, ids, owner), self.num_chunks)


def run_sbc(
    model,
    tokenizer,
    items: Sequence[TrainItem],
    num_chunks: int,
    chunking: ChunkingConfig,
    max_length: int,
    start: Optional[Sequence[Boundaries]] = None,
) -> list[ChunkingResult]:
    """SBC with the real loss scorer and `chunking.search`, from `start` (default: each item's own boundaries or AC)."""
    if start is None:
        start = [it.chunk_boundaries(num_chunks) for it in items]
    scorer = LossScorer(model, tokenizer, num_chunks, max_length, chunking.score_batch_size)
    c = chunking
    if c.search == "anneal":
        return anneal_search(items, start, scorer, c.eta, c.anneal_t0, c.anneal_cooling, c.anneal_steps, c.anneal_seed)
    return greedy_search(items, start, scorer, c.eta, c.max_rounds)
