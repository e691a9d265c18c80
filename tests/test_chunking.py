"""Search-based chunking: greedy and annealing on crafted scorers, and the real loss scorer (plain and prefix-sharing)."""

import math
import random

import pytest
import torch
import torch.nn.functional as F

from skipthink.chunking import LossScorer, anneal_search, greedy_search, neighbour_chunkings, run_sbc, shared_prefix
from skipthink.config import ChunkingConfig, StudentConfig
from skipthink.formats import IGNORE_INDEX, build_example, chunk_segments
from skipthink.items import TrainItem
from skipthink.perf.train import item_texts, toy_items
from skipthink.student import build_initial_student, load_student
from skipthink.text import average_boundaries, validate_boundaries

M = 4


def item(n_steps: int, name: str = "x") -> TrainItem:
    steps = tuple(f"Step {k} is here." for k in range(n_steps))
    return TrainItem(name, 0, "Q?", "a", " ".join(steps), steps)


def distance_scorer(targets: dict[str, tuple[int, ...]], calls: list):
    """Score = 1 + L1 distance to a planted optimum; records every proposal."""

    def score(items, boundaries):
        calls.append(list(zip(items, boundaries)))
        return [1.0 + sum(abs(b - t) for b, t in zip(bs, targets[it.sample_id])) for it, bs in zip(items, boundaries)]

    return score


def test_neighbours_move_one_boundary_one_step_and_keep_chunks_non_empty():
    assert neighbour_chunkings((1, 2), 4) == [(1, 3)]
    assert sorted(neighbour_chunkings((2, 4), 6)) == [(1, 4), (2, 3), (2, 5), (3, 4)]
    assert neighbour_chunkings((1, 2, 3), 4) == []  # every chunk is a single step


def test_crafted_scorer_optimum_is_found_for_many_items_at_once():
    items = [item(12, "a"), item(9, "b"), item(6, "c")]
    targets = {"a": (1, 2, 11), "b": (5, 6, 8), "c": (1, 2, 3)}
    calls = []
    start = [tuple(average_boundaries(len(it.steps), M)) for it in items]
    results = greedy_search(items, start, distance_scorer(targets, calls), eta=0.0, max_rounds=50)
    assert [r.boundaries for r in results] == [targets["a"], targets["b"], targets["c"]]
    assert [r.score for r in results] == [1.0, 1.0, 1.0]
    # Each accepted move shifts one boundary by one step: moves == L1 distance from AC.
    assert [r.moves for r in results] == [sum(abs(s - t) for s, t in zip(st, targets[it.sample_id])) for st, it in zip(start, items)]
    # The starts and all items' first proposals go to the scorer in ONE call, later rounds one call each.
    assert len({it.sample_id for it, _ in calls[0]}) == 3 and len(calls[0]) > 3
    assert len(calls) <= max(r.moves for r in results) + 1


def test_every_proposal_is_a_valid_chunking_between_steps():
    rng = random.Random(0)
    items = [item(n, str(n)) for n in range(M, 14)]
    proposals = []

    def random_scorer(its, bs):
        proposals.extend(zip(its, bs))
        return [rng.uniform(0.5, 2.0) for _ in bs]

    results = greedy_search(items, [average_boundaries(len(it.steps), M) for it in items], random_scorer, eta=0.0, max_rounds=5)
    assert len(proposals) > len(items)
    for it, bs in proposals + [(it, r.boundaries) for it, r in zip(items, results)]:
        assert all(isinstance(b, int) for b in bs)
        validate_boundaries(list(bs), len(it.steps), M)  # raises on an empty chunk
    assert all(r.moves <= 5 for r in results)


def test_eta_threshold_and_infinite_eta_keep_average_chunking():
    items = [item(8, "a")]
    targets = {"a": (1, 2, 3)}
    ac = tuple(average_boundaries(8, M))  # (2, 4, 6): distance 6, first move gains 1/7
    calls = []
    inf = greedy_search(items, [ac], distance_scorer(targets, calls), eta=math.inf, max_rounds=10)
    assert inf[0].boundaries == ac and inf[0].moves == 0 and inf[0].score == 7.0
    assert len(calls) == 1  # only the starting score is computed
    # A move from distance d gains 1/(1+d) relative: 1/7 = 0.143 at the start.
    blocked = greedy_search(items, [ac], distance_scorer(targets, []), eta=0.15, max_rounds=10)
    assert blocked[0].moves == 0 and blocked[0].boundaries == ac
    passed = greedy_search(items, [ac], distance_scorer(targets, []), eta=0.14, max_rounds=10)
    assert passed[0].moves == 6 and passed[0].boundaries == (1, 2, 3)
    capped = greedy_search(items, [ac], distance_scorer(targets, []), eta=0.0, max_rounds=1)
    assert capped[0].moves == 1
    calls = []
    none = greedy_search(items, [ac], distance_scorer(targets, calls), eta=0.0, max_rounds=0)
    assert (none[0].boundaries, none[0].score, none[0].moves, len(calls)) == (ac, 7.0, 0, 1)


def test_annealing_finds_the_planted_optimum_for_many_items_at_once():
    items = [item(12, "a"), item(9, "b"), item(6, "c")]
    targets = {"a": (1, 2, 11), "b": (5, 6, 8), "c": (1, 2, 3)}
    calls = []
    start = [tuple(average_boundaries(len(it.steps), M)) for it in items]
    results = anneal_search(items, start, distance_scorer(targets, calls), eta=0.0, t0=0.05, cooling=0.95, steps=100, seed=0)
    assert [r.boundaries for r in results] == [targets["a"], targets["b"], targets["c"]]
    assert [r.score for r in results] == [1.0, 1.0, 1.0]
    assert all(r.moves >= sum(abs(s - t) for s, t in zip(st, targets[it.sample_id])) for r, st, it in zip(results, start, items))
    # One scorer call per step for all items (starts first); chunkings seen before are not rescored.
    assert [len({it.sample_id for it, _ in c}) for c in calls[:2]] == [3, 3]
    assert len(calls) <= 101
    seen = [(it.sample_id, b) for c in calls for it, b in c]
    assert len(seen) == len(set(seen))
    # Seeded: the same seed walks the same way.
    again = anneal_search(items, start, distance_scorer(targets, []), eta=0.0, t0=0.05, cooling=0.95, steps=100, seed=0)
    assert again == results


# One boundary (two chunks) over ten steps: a local optimum at 2 behind barriers, the global one at 8.
TRAP = {1: 2.0, 2: 1.5, 3: 2.0, 4: 1.4, 5: 1.3, 6: 1.2, 7: 1.1, 8: 1.0, 9: 1.1}


def trap_scorer(items, boundaries):
    return [TRAP[b[0]] for b in boundaries]


def test_annealing_leaves_a_local_optimum_that_stops_greedy():
    items = [item(10, f"t{k}") for k in range(20)]
    start = [(2,)] * len(items)
    greedy = greedy_search(items, start, trap_scorer, eta=0.0, max_rounds=20)
    assert {(r.boundaries, r.score, r.moves) for r in greedy} == {((2,), 1.5, 0)}
    anneal = anneal_search(items, start, trap_scorer, eta=0.0, t0=0.5, cooling=0.98, steps=200, seed=0)
    assert sum(r.boundaries == (8,) for r in anneal) >= 18  # a walk can still miss the narrow exit
    assert all(r.score <= 1.5 for r in anneal)
    assert all(r.uphill >= 1 for r in anneal if r.boundaries != (2,))  # leaving 2 needs an uphill move
    # Cold from the start (T = 0) it is a random descent: it stops where greedy does.
    cold = anneal_search(items, start, trap_scorer, eta=0.0, t0=0.0, cooling=0.98, steps=200, seed=0)
    assert {(r.boundaries, r.moves) for r in cold} == {((2,), 0)}


def test_annealing_keeps_the_start_unless_the_best_beats_it_by_eta():
    items = [item(8, "a")]
    ac = tuple(average_boundaries(8, M))  # score 7 under the planted (1, 2, 3); the best possible is 1
    calls = []
    never = anneal_search(items, [ac], distance_scorer({"a": (1, 2, 3)}, calls), eta=math.inf, t0=0.05, cooling=0.9, steps=50, seed=0)
    assert (never[0].boundaries, never[0].score, never[0].moves) == (ac, 7.0, 0) and len(calls) == 1
    strict = anneal_search(items, [ac], distance_scorer({"a": (1, 2, 3)}, []), eta=0.9, t0=0.05, cooling=0.9, steps=50, seed=0)
    assert strict[0].boundaries == ac and strict[0].score == 7.0  # 6/7 = 0.857 < 0.9
    loose = anneal_search(items, [ac], distance_scorer({"a": (1, 2, 3)}, []), eta=0.85, t0=0.05, cooling=0.9, steps=50, seed=0)
    assert loose[0].boundaries == (1, 2, 3) and loose[0].score == 1.0


@pytest.fixture(scope="module")
def nano():
    import tempfile
    from pathlib import Path

    items = toy_items(12, M, seed=3)
    with tempfile.TemporaryDirectory() as d:
        path = build_initial_student(StudentConfig(size="nano", vocab_size=400, n_positions=256), item_texts(items), M, Path(d) / "s")
        model, tok = load_student(path, "cpu")
    return model, tok, items


def chunk_losses_one_at_a_time(model, tok, it: TrainItem, boundaries) -> float:
    stages = chunk_segments(it.question, it.with_boundaries(boundaries).chunks(M), it.answer)[:M]
    losses = []
    for stage in stages:
        ids, labels = build_example(tok, stage, 256)
        logits = model(torch.tensor([ids])).logits[0, :-1]
        losses.append(F.cross_entropy(logits, torch.tensor(labels[1:]), ignore_index=IGNORE_INDEX).item())
    return sum(losses) / len(losses)


@torch.no_grad()
def test_real_scoring_equals_per_chunk_losses(nano):
    model, tok, items = nano
    pairs = [(it, tuple(average_boundaries(len(it.steps), M))) for it in items[:4]]
    pairs += [(it, nb) for it, b in pairs[:2] for nb in neighbour_chunkings(b, len(it.steps))]
    want = [chunk_losses_one_at_a_time(model, tok, it, b) for it, b in pairs]
    for share in (False, True):
        scorer = LossScorer(model, tok, M, max_length=256, batch_size=3, share_prefix=share)  # several padded batches
        assert scorer([p[0] for p in pairs], [p[1] for p in pairs]) == pytest.approx(want, rel=1e-4)


def greedy_round(items):
    """Every item's start and all its one-move proposals: what a greedy round scores in one call."""
    pairs = []
    for it in items:
        ac = tuple(average_boundaries(len(it.steps), M))
        pairs += [(it, ac)] + [(it, nb) for nb in neighbour_chunkings(ac, len(it.steps))]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def leading_matches(a, b) -> int:
    n = 0
    for x in zip(a.input_ids, a.chunk_of_token, b.input_ids, b.chunk_of_token):
        if (x[0], x[1]) != (x[2], x[3]):
            break
        n += 1
    return n


def test_shared_prefix_counts_the_leading_tokens_in_the_same_chunk(nano):
    model, tok, items = nano
    scorer = LossScorer(model, tok, M, max_length=256, batch_size=8)
    its, bs = greedy_round(items[:3])
    seqs = [scorer.sequence(it, b) for it, b in zip(its, bs)]
    same_item = [(a, b) for i, a in enumerate(seqs) for j, b in enumerate(seqs) if i < j and its[i] is its[j]]
    assert [shared_prefix(a, b) for a, b in same_item] == [leading_matches(a, b) for a, b in same_item]
    question = len(tok.encode(chunk_segments(its[0].question, ["x"] * M, "a")[0].prompt, add_special_tokens=False))
    assert all(shared_prefix(a, b) > question for a, b in same_item)  # more than the question is shared
    short = LossScorer(model, tok, M, max_length=len(seqs[0].input_ids) - 5, batch_size=8).sequence(its[0], bs[0])
    assert short.pieces is None and shared_prefix(short, seqs[0]) == 0  # truncated: positions shifted


@torch.no_grad()
@pytest.mark.parametrize("max_length", [256, 0], ids=["untruncated", "some-truncated"])
def test_prefix_sharing_scores_equal_plain_scores(nano, max_length):
    model, tok, items = nano
    its, bs = greedy_round(items)
    plain = LossScorer(model, tok, M, max_length=256, batch_size=5, share_prefix=False)
    if max_length == 0:  # the median length: about half of the sequences lose their first tokens
        lengths = sorted(len(plain.sequence(it, b).input_ids) for it, b in zip(its, bs))
        max_length = lengths[len(lengths) // 2]
        plain.max_length = max_length
    fast = LossScorer(model, tok, M, max_length=max_length, batch_size=5)
    truncated = sum(fast.sequence(it, b).pieces is None for it, b in zip(its, bs))
    assert (truncated == 0) if max_length == 256 else (0 < truncated < len(its))
    seqs = [fast.sequence(it, b) for it, b in zip(its, bs)]
    anchor_of, cached = fast._plan(its, seqs)
    assert sum(cached) > 0  # the fast path really ran on cached prefixes
    assert all(cached[k] == 0 and anchor_of[k] == k for k, s in enumerate(seqs) if s.pieces is None)  # truncated: in full
    assert fast(its, bs) == pytest.approx(plain(its, bs), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("search", ["greedy", "anneal"])
def test_run_sbc_with_the_real_model(nano, search):
    model, tok, items = nano
    cfg = ChunkingConfig(num_chunks=M, eta=0.0, max_rounds=3, search=search, anneal_steps=6)
    results = run_sbc(model, tok, items, M, cfg, max_length=256)
    plain = LossScorer(model, tok, M, max_length=256, batch_size=64, share_prefix=False)
    assert [r.score for r in results] == pytest.approx(plain(items, [r.boundaries for r in results]), rel=1e-5)
    start = plain(items, [tuple(average_boundaries(len(it.steps), M)) for it in items])
    for it, r, s in zip(items, results, start):
        validate_boundaries(list(r.boundaries), len(it.steps), M)
        assert r.score <= s and 0 <= r.moves <= (3 if search == "greedy" else 6)
    assert any(r.moves > 0 for r in results)  # with eta=0 an untrained model always finds a better chunking somewhere
