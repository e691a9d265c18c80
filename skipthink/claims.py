"""The paper's claims, judged from sweep results by rule, not by eye.

Input: the runs of one or more sweeps (`flows/sweep.py` JSON: `runs`, each with `run_name` =
`sweep/dataset/setting/seedN` and per-method figures). Every comparison pairs two methods (or
two settings) on the same dataset, setting and seed: the seed fixes the generated data, the
student's initialisation and the training order, so the difference per seed is the effect.

Per task a comparison is one of:
- supported: the 95 % interval of the paired difference lies above the claim's threshold;
- contradicted: it lies below (the effect goes the other way, or the loss is larger than allowed);
- inconclusive: it straddles;
  (the interval is the paired t-interval over seeds, widened to the binomial noise of the test
  questions when the reports carry their count `n` and the seeds agree more closely than that:
  three seeds that all differ by +1 pp on 100 questions show no effect, only a zero spread);
- untestable: no method learns the task (a task at the floor ranks nothing), or both methods sit
  at the ceiling on every seed.
A claim is supported when some task supports it and none contradicts it, with the supporting
tasks at least as many as the inconclusive ones; not supported when some task contradicts it and
none supports it; inconclusive otherwise (mixed, or too wide).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Optional, Sequence

from skipthink.stats import Interval, mean_interval, normal_interval, paired_t_test, t_cdf, t_quantile, wilson_interval

# A task "learns" when some chain-of-thought method beats answer-only by this much (pp).
LEARNS_MARGIN_PP = 10.0
# Both methods at or above this accuracy on every seed: nothing left to rank.
CEILING_PP = 99.0
# "Minimal accuracy loss" (STT vs FT): the interval of STT - FT stays above -3 pp.
MINIMAL_LOSS_PP = 3.0
# The paper's measured STT speedup range over FT.
PAPER_SPEEDUP = (1.08, 1.89)

CHAIN_OF_THOUGHT = ("ft", "cwt-ac", "cwt-sbc", "stt", "skipall")


@dataclass
class Evidence:
    task: str
    student: str
    comparison: str
    seeds: int
    delta_mean: Optional[float]
    ci95: Optional[tuple[float, float]]
    p_value: Optional[float]
    verdict: str
    note: str = ""
    values: dict = field(default_factory=dict)  # the per-method means behind the delta


@dataclass
class Cell:
    """One (sweep, dataset, setting): method -> seed -> figures."""

    student: str
    dataset: str
    setting: str
    by_method: dict[str, dict[str, dict]]
    # Real benchmark questions: every seed is tested on the same split, so the questions'
    # sampling noise is shared by the seeds and does not average out over them.
    fixed_test_split: bool = False
    # seed -> FT / STT batch-1 latency measured side by side (`skipthink bench latency`), when given.
    latency_bench: dict[str, float] = field(default_factory=dict)

    def metric(self, method: str, key: str) -> dict[str, float]:
        return {s: m[key] for s, m in self.by_method.get(method, {}).items() if m.get(key) is not None}

    def learns(self) -> bool:
        """Some chain-of-thought method beats answer-only (or, without answer-only, 0) by the margin."""
        base = self.metric("answer-only", "accuracy")
        floor = statistics.fmean(base.values()) if base else 0.0
        return any(statistics.fmean(v.values()) >= floor + LEARNS_MARGIN_PP for m in CHAIN_OF_THOUGHT if (v := self.metric(m, "accuracy")))


def cells(sweeps: Iterable[dict], student_of: Callable[[dict], str], fixed_split_of: Callable[[dict], bool] = lambda sweep: False) -> list[Cell]:
    out: dict[tuple[str, str, str], Cell] = {}
    for sweep in sweeps:
        student, fixed = student_of(sweep), fixed_split_of(sweep)
        for run in sweep["runs"]:
            _, dataset, setting, seed = run["run_name"].split("/")
            cell = out.setdefault((student, dataset, setting), Cell(student, dataset, setting, {}, fixed))
            for method, figures in run["methods"].items():
                if seed in cell.by_method.get(method, {}):
                    raise ValueError(f"{run['run_name']}: {method} {seed} of {student} / {dataset} / {setting} is in two sweeps; "
                                     "give one of them its own setting or student")
                cell.by_method.setdefault(method, {})[seed] = figures
    return list(out.values())


def attach_latency(cs: list[Cell], sweeps: Iterable[dict], benches: Iterable[dict], student_of: Callable[[dict], str]) -> list[Cell]:
    """Give each cell the FT / STT latency ratios `bench latency` measured on its runs (matched
    by run name `sweep/dataset/setting/seedN`). A bench of a run in none of the sweeps is an error."""
    students = {s["spec"]["name"]: student_of(s) for s in sweeps}
    by_key = {(c.student, c.dataset, c.setting): c for c in cs}
    for b in benches:
        sweep, dataset, setting, seed = b["run_name"].split("/")
        cell = by_key.get((students.get(sweep), dataset, setting))
        ratio = b.get("vs_ft", {}).get("stt", {}).get("latency_ratio")
        if cell is None or ratio is None:
            raise ValueError(f"latency bench of {b['run_name']}: {'no FT / STT ratio in it' if cell else 'not a run of the given sweeps'}")
        cell.latency_bench[seed] = ratio
    return cs


def _rounded(x: Optional[float], digits: int = 3) -> Optional[float]:
    return None if x is None or math.isnan(x) else round(x, digits)


def _judge(interval: Interval, threshold: float) -> str:
    if interval.low is None:
        return "inconclusive"
    if interval.low > threshold:
        return "supported"
    if interval.high < threshold:
        return "contradicted"
    return "inconclusive"


def paired(a: Cell, method_a: str, b: Cell, method_b: str, comparison: str, key: str = "accuracy", threshold: float = 0.0) -> Evidence:
    """method_a (in cell a) minus method_b (in cell b), paired by seed, judged against `threshold`."""
    xs, ys = a.metric(method_a, key), b.metric(method_b, key)
    seeds = sorted(set(xs) & set(ys))
    # One method in two settings (annealing vs greedy, an eta ablation): name each by its setting.
    name_a, name_b = (method_a, method_b) if method_a != method_b else (f"{method_a} ({a.setting})", f"{method_b} ({b.setting})")
    values = {name_a: _rounded(statistics.fmean(xs[s] for s in seeds)) if seeds else None,
              name_b: _rounded(statistics.fmean(ys[s] for s in seeds)) if seeds else None}
    base = dict(task=a.dataset, student=a.student, comparison=comparison, seeds=len(seeds), values=values)
    if len(seeds) < 2:
        absent = [f"{m} ({c.setting})" if method_a == method_b else m for m, c in ((method_a, a), (method_b, b)) if m not in c.by_method]
        note = f"not run: {', '.join(absent)}" if absent else "fewer than two paired seeds"
        return Evidence(**base, delta_mean=None, ci95=None, p_value=None, verdict="untestable", note=note)
    test = paired_t_test([xs[s] for s in seeds], [ys[s] for s in seeds])
    iv, p_value, floor_note = test.interval, test.p_value, ""
    se_floor = _binomial_se(a, method_a, b, method_b, seeds) if key == "accuracy" else None
    floored = normal_interval(test.mean_difference, se_floor) if se_floor else None
    if floored and floored[0].half_width > (iv.half_width or 0.0):
        # The seeds agree more closely than the test questions can resolve (e.g. +1 pp on every
        # seed of 100 questions): the t-interval would be near zero width, so judge against the
        # questions' own sampling noise instead.
        iv, p_value = floored
        floor_note = f"binomial floor: interval from the test questions' sampling noise (SE {se_floor:.2f} pp), wider than the seeds' spread"
    figures = dict(delta_mean=_rounded(test.mean_difference), ci95=(_rounded(iv.low), _rounded(iv.high)), p_value=_rounded(p_value, 4))
    # Untestable tasks keep their figures (for the record) but get no verdict.
    if key == "accuracy" and not (a.learns() and b.learns()):
        return Evidence(**base, **figures, verdict="untestable",
                        note=f"no chain-of-thought method beats answer-only by {LEARNS_MARGIN_PP:g} pp on average: the task is at the floor for ranking methods")
    if key == "accuracy" and all(xs[s] >= CEILING_PP and ys[s] >= CEILING_PP for s in seeds):
        return Evidence(**base, **figures, verdict="untestable", note=f"both at the ceiling (>= {CEILING_PP:g} %) on every seed")
    # Equal on every seed: no difference to rank (e.g. two methods that trained the same student).
    note = "; ".join(n for n in ("identical on every seed" if all(xs[s] == ys[s] for s in seeds) else "", floor_note) if n)
    return Evidence(**base, **figures, verdict=_judge(iv, threshold), note=note)


def _binomial_se(a: Cell, method_a: str, b: Cell, method_b: str, seeds: Sequence[str]) -> Optional[float]:
    """Standard error (pp) of the mean paired accuracy difference from the test questions' sampling
    alone, or None when the reports do not say how many questions (`n`) each seed was tested on.
    The two accuracies are treated as independent (conservative: the same questions correlate
    them). A test split regenerated per seed averages over seeds; a fixed one does not."""
    ns = [c.by_method[m][s].get("n") for s in seeds for c, m in ((a, method_a), (b, method_b))]
    if not ns or any(not n for n in ns):
        return None
    pa = statistics.fmean(a.by_method[method_a][s]["accuracy"] for s in seeds) / 100
    pb = statistics.fmean(b.by_method[method_b][s]["accuracy"] for s in seeds) / 100
    variance = (pa * (1 - pa) + pb * (1 - pb)) / min(ns)
    if not (a.fixed_test_split and b.fixed_test_split):
        variance /= len(seeds)
    return 100 * math.sqrt(variance)


def welch(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> tuple[float, Interval, float]:
    """Mean difference a - b of two independent samples, its Welch interval and two-sided p."""
    ma, mb = statistics.fmean(a), statistics.fmean(b)
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    diff = ma - mb
    se = math.sqrt(va + vb)
    if se == 0.0:
        return diff, Interval(diff, diff, diff), 1.0 if diff == 0.0 else 0.0
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = t_quantile(1 - (1 - confidence) / 2, df) * se
    p = min(1.0, 2.0 * (1.0 - t_cdf(abs(diff / se), df)))
    return diff, Interval(diff, diff - half, diff + half), p


def overall(evidence: Sequence[Evidence]) -> str:
    counts = {v: sum(e.verdict == v for e in evidence) for v in ("supported", "contradicted", "inconclusive")}
    if not any(counts.values()):
        return "untestable"
    if counts["supported"] and not counts["contradicted"] and counts["supported"] >= counts["inconclusive"]:
        return "supported"
    if counts["contradicted"] and not counts["supported"]:
        return "not supported"
    return "inconclusive"


def _default(cs: list[Cell]) -> list[Cell]:
    return [c for c in cs if c.setting == "default"]


def _setting(cs: list[Cell], like: Cell, setting: str) -> Optional[Cell]:
    return next((c for c in cs if c.student == like.student and c.dataset == like.dataset and c.setting == setting), None)


def judge(cs: list[Cell]) -> dict[str, dict]:
    """Every claim: its verdict, the rule, and the evidence per task."""
    claims: dict[str, tuple[str, list[Evidence]]] = {}
    base = _default(cs)

    ev = [paired(c, "cwt-sbc", c, "ft", "equal epochs") for c in base]
    ev += [paired(t, "cwt-sbc", t, "ft", "equal target tokens") for c in base if (t := _setting(cs, c, "training.budget=tokens"))]
    claims["cwt_sbc_beats_ft"] = ("CWT-SBC accuracy - FT accuracy > 0 (pp), at equal epochs and at equal target tokens", ev)

    ev = [paired(c, "cwt-sbc", c, "cwt-ac", "SBC vs average chunking") for c in base]
    ev += [paired(a, "cwt-sbc", c, "cwt-sbc", "annealing vs greedy search") for c in base if (a := _setting(cs, c, "chunking.search=anneal"))]
    ev += _eta_ablation(cs, base)
    claims["sbc_beats_average_chunking"] = (
        "CWT-SBC accuracy - CWT-AC accuracy > 0 (pp); annealed SBC - greedy SBC reported beside it; "
        "other eta values (an ablation: reported, not part of the verdict)", ev)

    ev = []
    for c in base:
        loss = paired(c, "stt", c, "ft", "accuracy loss (STT - FT)", threshold=-MINIMAL_LOSS_PP)
        ratios = list(c.metric("stt", "tokens_vs_ft").values())
        speed = Evidence(task=c.dataset, student=c.student, comparison="generated tokens, FT / STT", seeds=len(ratios), delta_mean=None, ci95=None,
                         p_value=None, verdict="untestable", note="fewer than two seeds")
        if len(ratios) >= 2:
            iv = mean_interval(ratios)
            test = paired_t_test(ratios, [1.0] * len(ratios))
            in_range = PAPER_SPEEDUP[0] <= iv.estimate <= PAPER_SPEEDUP[1]
            speed = Evidence(task=c.dataset, student=c.student, comparison="generated tokens, FT / STT", seeds=len(ratios), delta_mean=_rounded(iv.estimate),
                             ci95=(_rounded(iv.low), _rounded(iv.high)), p_value=_rounded(test.p_value, 4), verdict=_judge(iv, 1.0),
                             note=f"{'inside' if in_range else 'outside'} the paper's {PAPER_SPEEDUP[0]}-{PAPER_SPEEDUP[1]}x")
        both = "untestable" if "untestable" in (speed.verdict, loss.verdict) else (
            "supported" if speed.verdict == loss.verdict == "supported" else "contradicted" if "contradicted" in (speed.verdict, loss.verdict) else "inconclusive")
        speed.verdict, loss.verdict = speed.verdict + " (part)", loss.verdict + " (part)"
        ev += [Evidence(task=c.dataset, student=c.student, comparison="faster and minimal loss", seeds=min(speed.seeds, loss.seeds), delta_mean=None,
                        ci95=None, p_value=None, verdict=both, note="both parts below"), speed, loss, _latency_part(c)]
    claims["stt_faster_with_minimal_loss"] = (
        f"token ratio FT/STT > 1 (interval) and STT - FT accuracy > -{MINIMAL_LOSS_PP:g} pp (interval); the paper measured {PAPER_SPEEDUP[0]}-{PAPER_SPEEDUP[1]}x; "
        "batch-1 latency FT/STT reported beside them (wall time depends on the machine, tokens do not)", ev)

    claims["speedup_smallest_on_last_letter"] = ("STT's token ratio on last-letter - on each other task < 0 (Welch interval over seeds)", _smallest_on_last_letter(base))

    ev = [paired(c, "stt", c, "skipall", "STT - SkipALL accuracy") for c in base]
    claims["skipall_loses_more_than_stt"] = ("STT accuracy - SkipALL accuracy > 0 (pp)", ev)

    return {name: {"verdict": overall([e for e in evidence if not any(tag in e.verdict for tag in ("(part)", "(ablation)", "(reported)"))]), "rule": rule,
                   "evidence": [asdict(e) for e in evidence]} for name, (rule, evidence) in claims.items()}


def _latency_part(c: Cell) -> Evidence:
    """FT / STT batch-1 latency over seeds: measured side by side when `bench latency` ran on the
    cell's runs, else the evaluate stages' own medians (each method timed alone, in its own stage)."""
    side_by_side = bool(c.latency_bench)
    ratios = list(c.latency_bench.values()) if side_by_side else list(c.metric("stt", "speedup_vs_ft").values())
    comparison = "batch-1 latency, FT / STT" + (" (bench latency, side by side)" if side_by_side else " (evaluate stages, timed apart)")
    if len(ratios) < 2:
        return Evidence(task=c.dataset, student=c.student, comparison=comparison, seeds=len(ratios), delta_mean=_rounded(ratios[0]) if ratios else None,
                        ci95=None, p_value=None, verdict="untestable (reported)", note="fewer than two seeds")
    iv = mean_interval(ratios)
    test = paired_t_test(ratios, [1.0] * len(ratios))
    note = "" if side_by_side else "timed on a shared machine: the neighbours' load is in it"
    return Evidence(task=c.dataset, student=c.student, comparison=comparison, seeds=len(ratios), delta_mean=_rounded(iv.estimate),
                    ci95=(_rounded(iv.low), _rounded(iv.high)), p_value=_rounded(test.p_value, 4), verdict=_judge(iv, 1.0) + " (reported)", note=note)


def _eta_ablation(cs: list[Cell], base: list[Cell]) -> list[Evidence]:
    """CWT-SBC at each other eta against CWT-AC and against the default eta, paired by seed.
    Marked "(ablation)": choosing the best eta on these figures would be tuning on them, so they
    never enter the claim's verdict."""
    out = []
    for c in base:
        for e in (x for x in cs if x.student == c.student and x.dataset == c.dataset and x.setting.startswith("chunking.eta=")):
            for ev in (paired(e, "cwt-sbc", c, "cwt-ac", f"SBC at {e.setting} vs average chunking"),
                       paired(e, "cwt-sbc", c, "cwt-sbc", f"SBC at {e.setting} vs SBC at the default eta")):
                ev.verdict += " (ablation)"
                out.append(ev)
    return out


def _smallest_on_last_letter(base: list[Cell]) -> list[Evidence]:
    out = []
    for last in [c for c in base if c.dataset == "last_letter_concatenation"]:
        ll = list(last.metric("stt", "tokens_vs_ft").values())
        for other in [c for c in base if c.student == last.student and c is not last]:
            xs = list(other.metric("stt", "tokens_vs_ft").values())
            base_ev = dict(task=f"last_letter_concatenation vs {other.dataset}", student=last.student, comparison="STT token ratio difference",
                           seeds=min(len(ll), len(xs)), values={"last_letter_concatenation": _rounded(statistics.fmean(ll)) if ll else None,
                                                                other.dataset: _rounded(statistics.fmean(xs)) if xs else None})
            if len(ll) < 2 or len(xs) < 2:
                out.append(Evidence(**base_ev, delta_mean=None, ci95=None, p_value=None, verdict="untestable", note="fewer than two seeds"))
                continue
            diff, iv, p = welch(ll, xs)
            verdict = "supported" if iv.high < 0 else "contradicted" if iv.low > 0 else "inconclusive"
            out.append(Evidence(**base_ev, delta_mean=_rounded(diff), ci95=(_rounded(iv.low), _rounded(iv.high)), p_value=_rounded(p, 4), verdict=verdict))
    if not out:
        out.append(Evidence(task="last_letter_concatenation", student="-", comparison="STT token ratio difference", seeds=0, delta_mean=None, ci95=None,
                            p_value=None, verdict="untestable", note="needs last-letter and at least one other task in the sweeps"))
    return out


def results_table(cs: list[Cell], keys: Sequence[str] = ("accuracy", "real_accuracy", "tokens_vs_ft", "speedup_vs_ft", "mean_new_tokens", "n_params", "train_minutes")) -> dict:
    """{student: {dataset: {setting: {method: {KEY_mean, KEY_ci95, seeds}}}}}: mean and 95 % t half-width over seeds."""
    out: dict = {}
    for c in cs:
        for method, seeds in c.by_method.items():
            row: dict = {"seeds": len(seeds)}
            for key in keys:
                vals = [m[key] for m in seeds.values() if m.get(key) is not None]
                if not vals:
                    continue
                iv = mean_interval(vals)
                row[f"{key}_mean"] = _rounded(iv.estimate)
                row[f"{key}_ci95"] = _rounded(iv.half_width)
            out.setdefault(c.student, {}).setdefault(c.dataset, {}).setdefault(c.setting, {})[method] = row
    return out


def ablation_table(cs: list[Cell], keys: Sequence[str] = ("accuracy", "real_accuracy", "mean_new_tokens", "tokens_vs_ft", "train_minutes")) -> dict:
    """{student: {dataset: {cells: {setting: {method: KEY_mean/_ci95, seeds}}, paired: [...]}}}: every
    non-default setting (an eta, an M, a skip check, annealing) beside the default, each of its
    methods paired by seed with the same method at the default, and CWT-SBC also with CWT-AC."""
    table = results_table(cs, keys)
    out: dict = {}
    for c in _default(cs):
        others = sorted((x for x in cs if x.student == c.student and x.dataset == c.dataset and x.setting != "default"), key=lambda x: x.setting)
        if not others:
            continue
        evidence = []
        for e in others:
            for method in (m for m in e.by_method if m in c.by_method):
                evidence.append(paired(e, method, c, method, f"{method} at {e.setting} vs the default"))
            if "cwt-sbc" in e.by_method and "cwt-ac" in c.by_method:
                evidence.append(paired(e, "cwt-sbc", c, "cwt-ac", f"cwt-sbc at {e.setting} vs average chunking"))
        cells = {x.setting: table[c.student][c.dataset][x.setting] for x in [c, *others]}
        out.setdefault(c.student, {})[c.dataset] = {"cells": cells, "paired": [asdict(e) for e in evidence]}
    return out


def _sweep_config(sweep: dict):
    """The run config a sweep's spec resolves to (its preset and overrides)."""
    from skipthink.config import load_config

    spec = sweep["spec"]
    return load_config(spec["preset"], overrides=spec.get("overrides", []))


def fixed_test_split(sweep: dict) -> bool:
    """A sweep on a real benchmark tests every seed on the same questions; generated data is
    regenerated per seed."""
    return _sweep_config(sweep).dataset.source != "synthetic"


# Sweep-wide overrides under these change what a student learns from, not how it is evaluated.
DATA_SHAPE_PREFIXES = ("dataset.", "teacher.", "student.")


def student_label(sweep: dict) -> str:
    """The student a sweep trained, from its spec: a pretrained model's name or `scratch SIZE`,
    with the data source when it is not the generators (cells are matched by this label, and a
    student on real questions must not be paired with one on generated questions)."""
    cfg = _sweep_config(sweep)
    label = cfg.student.name if cfg.student.kind == "pretrained" else f"scratch {cfg.student.size}"
    # Per-dataset overrides may refine the student; the sweep spec records them.
    if cfg.dataset.source == "synthetic":
        # A sweep that changes the generated data, the teacher or the student for all its runs
        # trains a different cell (four flippers and 3,000 questions are not the demo's task).
        shape = [o for o in sweep["spec"].get("overrides", []) if o.startswith(DATA_SHAPE_PREFIXES)]
        return ", ".join([label, *shape])
    # On a real benchmark the training pool is part of the setup: 64 and 160 questions are two cells.
    return f"{label} on {cfg.dataset.source}" + (f", {cfg.dataset.max_train} train" if cfg.dataset.max_train else "")


# Fine-tune-CoT's best fine-tuned GPT-2 (124M-774M, real training split) per task: the transfer targets.
FINETUNE_COT_BEST_GPT2 = {"coin_flip": 83.33, "tracking_shuffled_objects": 48.00, "last_letter_concatenation": 12.00, "multiarith": 8.89}


def transfer_table(cs: list[Cell], methods: Sequence[str] = ("ft", "stt")) -> dict:
    """{dataset: {method: {real_accuracy_mean, real_accuracy_ci95, seeds, n_params, minutes, target, beats_target}}}
    for students trained on generated data and tested on the real test split; STT also gets its
    token ratio against FT."""
    out: dict = {}
    students: dict[str, str] = {}
    for c in (c for c in cs if c.setting == "default"):
        for method in methods:
            real = list(c.metric(method, "real_accuracy").values())
            if not real:
                continue
            # One row per task: a second student on it would overwrite the first's row unseen.
            if students.setdefault(c.dataset, c.student) != c.student:
                raise ValueError(f"{c.dataset}: two students tested on the real split ({students[c.dataset]!r} and {c.student!r}); "
                                 "give each its own transfer table")
            iv = mean_interval(real)
            minutes = list(c.metric(method, "train_minutes").values())
            params = list(c.metric(method, "n_params").values())
            target = FINETUNE_COT_BEST_GPT2.get(c.dataset)
            row = {"real_accuracy_mean": _rounded(iv.estimate, 2), "real_accuracy_ci95": _rounded(iv.half_width, 2), "seeds": len(real),
                   "n_params": max(params) if params else None, "minutes": _rounded(statistics.fmean(minutes), 2) if minutes else None,
                   "target": target, "beats_target": None if target is None or iv.low is None else bool(iv.low > target)}
            if method == "stt":
                ratios = list(c.metric("stt", "tokens_vs_ft").values())
                row["tokens_vs_ft_mean"] = _rounded(statistics.fmean(ratios)) if ratios else None
            out.setdefault(c.dataset, {})[method] = row
    return out


# Fine-tune-CoT's fine-tuned GPT-2 small (124M, real training split, text-davinci-002 teacher) per task.
FINETUNE_COT_GPT2_124M = {"coin_flip": 77.33, "last_letter_concatenation": 4.67, "multiarith": 8.33, "tracking_shuffled_objects": 38.67}


def _accuracy_interval(accuracies: Sequence[float], n_questions: Optional[int], correct: Optional[int] = None) -> tuple[Interval, str]:
    """Over seeds a t-interval; one seed alone gets a Wilson interval over its test questions
    (its correct count, or for reports that predate it, the count its rounded accuracy implies)."""
    if len(accuracies) >= 2 or not n_questions:
        return mean_interval(accuracies), f"t over {len(accuracies)} seeds"
    correct = round(accuracies[0] * n_questions / 100) if correct is None else correct
    return wilson_interval(correct, n_questions).scaled(100), f"wilson over {n_questions} questions (one seed)"


def pretrained_table(cs: list[Cell]) -> dict:
    """{dataset: {method: {accuracy_mean, accuracy_ci95: [low, high], interval, seeds, mean_new_tokens,
    tokens_vs_ft_mean, speedup_vs_ft_mean, n_test, finetune_cot_gpt2_124m}}} for the default setting."""
    from skipthink.config import METHODS

    out: dict = {}
    for c in (c for c in cs if c.setting == "default"):
        for method in (m for m in METHODS if m in c.by_method):
            accuracy = list(c.metric(method, "accuracy").values())
            if not accuracy:
                continue
            n_test = list(c.metric(method, "n").values())
            correct = list(c.metric(method, "correct").values())
            iv, how = _accuracy_interval(accuracy, min(n_test) if n_test else None, correct[0] if len(correct) == 1 else None)
            mean_of = (lambda key: _rounded(statistics.fmean(v), 3) if (v := list(c.metric(method, key).values())) else None)
            out.setdefault(c.dataset, {})[method] = {
                "accuracy_mean": _rounded(iv.estimate, 2),
                "accuracy_ci95": None if iv.low is None else [_rounded(iv.low, 2), _rounded(iv.high, 2)],
                "interval": how, "seeds": len(accuracy), "n_test": min(n_test) if n_test else None,
                "mean_new_tokens": mean_of("mean_new_tokens"), "tokens_vs_ft_mean": mean_of("tokens_vs_ft"),
                "speedup_vs_ft_mean": mean_of("speedup_vs_ft"), "finetune_cot_gpt2_124m": FINETUNE_COT_GPT2_124M.get(c.dataset),
            }
    return out


def _fmt_evidence(e: dict) -> str:
    # The student too: one task can be judged for a scratch and a pretrained student.
    where = f"{e['task']}, {e['student']}" if e.get("student") not in (None, "-") else e["task"]
    if e["delta_mean"] is None or e["ci95"] is None:
        return f"{where} ({e['comparison']}): {e['verdict']}" + (f" — {e['note']}" if e.get("note") else "")
    low, high = e["ci95"]
    p = f", p = {e['p_value']:.3g}" if e.get("p_value") is not None else ""
    values = ", ".join(f"{k} {v:g}" for k, v in (e.get("values") or {}).items() if v is not None)
    return (f"{where} ({e['comparison']}, {e['seeds']} seeds): {e['delta_mean']:+g} [{low:g}, {high:g}]{p}"
            + (f" ({values})" if values else "") + f" → {e['verdict']}" + (f"; {e['note']}" if e.get("note") else ""))


def claims_markdown(verdicts: dict) -> str:
    """The verdicts as a markdown table: claim, rule, evidence per task, verdict."""
    lines = ["| claim | rule | evidence (paired difference, mean [95 % interval]) | verdict |", "|---|---|---|---|"]
    for name, claim in verdicts.items():
        evidence = "<br>".join(_fmt_evidence(e) for e in claim["evidence"])
        lines.append(f"| {name.replace('_', ' ')} | {claim['rule']} | {evidence} | **{claim['verdict']}** |")
    return "\n".join(lines) + "\n"
