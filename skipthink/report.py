"""The run report: the paper's methods × datasets tables in markdown, plus PNG figures.

Inputs are plain rows, so the report knows nothing about DuckDB (the caller reads them):

- `rows`: one dict per evaluated (method, dataset, test set), shaped like the `metrics` table:
  `method`, `dataset`, optional `test_set` (None/"test" = the run's own test split; anything
  else, e.g. "real", is its own column), `n`, `accuracy` (percent), `mean_new_tokens`,
  `latency_median_s`, `throughput_qps`. Several rows for the same cell (seeds) are averaged.
- `skip_rates`: label (e.g. dataset) -> share of skip samples with chunk j skipped, j = 1..M
  (`skipdata.skip_rates` over the `skip_samples` masks).
- `loss_curves`: label (e.g. "coin_flip/cwt-sbc") -> [(step, loss), …] from `train_log`.
- `correctness`: method -> {sample_id: correct} on the run's own test split, for the paired
  comparisons (a paired t-test over questions, `skipthink.stats`).
- `examples` / `skip_examples`: a few fixed test questions with every method's output, and a
  few skip-data training items with the chunks the CWT-SBC student could do without.

Every accuracy carries a 95 % interval: Wilson for one run, mean ± t over several (seeds).

Figures are drawn with matplotlib's object API (`Figure`, Agg canvas): no pyplot global state,
safe in worker threads and headless processes.
"""

from __future__ import annotations

import base64
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

from matplotlib.figure import Figure

from skipthink.config import METHODS
from skipthink.formats import ANSWER, SEP, chunk_marker
from skipthink.stats import Interval, mean_interval, paired_t_test, wilson_interval

METRIC_KEYS = ("n", "accuracy", "mean_new_tokens", "latency_median_s", "throughput_qps")
MISSING = "–"


def _column(row: Mapping) -> str:
    test_set = row.get("test_set")
    return row["dataset"] if test_set in (None, "", "test") else f"{row['dataset']} ({test_set})"


def _method_order(methods) -> list[str]:
    known = [m for m in METHODS if m in methods]
    return known + sorted(m for m in methods if m not in METHODS)


def _cells(rows: Sequence[Mapping]) -> dict[tuple[str, str], dict]:
    """(column, method) -> averaged metrics."""
    groups: dict[tuple[str, str], list[Mapping]] = defaultdict(list)
    for row in rows:
        groups[(_column(row), row["method"])].append(row)
    cells = {}
    for key, group in groups.items():
        cell = {}
        for k in METRIC_KEYS:
            values = [g[k] for g in group if g.get(k) is not None]
            cell[k] = sum(values) / len(values) if values else None
        cell["runs"] = len(group)
        cell["interval"] = _accuracy_interval(group)
        cells[key] = cell
    return cells


def _accuracy_interval(group: Sequence[Mapping]) -> Optional[Interval]:
    """Percent: Wilson for one run (k of n correct), mean ± t over several runs."""
    scored = [g for g in group if g.get("accuracy") is not None]
    if not scored:
        return None
    if len(scored) > 1:
        return mean_interval([g["accuracy"] for g in scored])
    n = scored[0].get("n")
    if not n:
        return Interval(scored[0]["accuracy"], None, None)
    return wilson_interval(round(scored[0]["accuracy"] * n / 100), int(n)).scaled(100)


def format_interval(interval: Optional[Interval], spec: str = ".1f") -> str:
    """`[low, high]`, or the missing mark when there is no interval."""
    if interval is None or interval.low is None:
        return MISSING
    return f"[{interval.low:{spec}}, {interval.high:{spec}}]"


def _layout(cells) -> tuple[list[str], list[str]]:
    columns = sorted({c for c, _ in cells})
    methods = _method_order({m for _, m in cells})
    return columns, methods


def _speedup(cells, column: str, method: str, key: str) -> Optional[float]:
    ft, cell = cells.get((column, "ft")), cells.get((column, method))
    if ft is None or cell is None:
        return None
    from skipthink.evaluation import ratio  # evaluation imports torch: only when a report is drawn

    return ratio(ft.get(key), cell.get(key))


def _fmt(value: Optional[float], spec: str, suffix: str = "") -> str:
    return MISSING if value is None else f"{value:{spec}}{suffix}"


def _markdown_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines)


def render_markdown(
    run_id: str,
    rows: Sequence[Mapping],
    figures: Mapping[str, Path],
    *,
    correctness: Optional[Mapping[str, Mapping[str, bool]]] = None,
    examples: Sequence["QuestionExample"] = (),
    skip_examples: Sequence["SkipExample"] = (),
    skip_note: Optional[str] = None,
) -> str:
    cells = _cells(rows)
    columns, methods = _layout(cells)

    def grid(value) -> str:
        return _markdown_table(["method", *columns], [[m, *(value(c, m) for c in columns)] for m in methods])

    def metric(key: str, spec: str):
        return lambda c, m: _fmt(cells.get((c, m), {}).get(key), spec)

    def speed(c, m) -> str:
        tokens, latency = _speedup(cells, c, m, "mean_new_tokens"), _speedup(cells, c, m, "latency_median_s")
        if tokens is None and latency is None:
            return MISSING
        return f"{_fmt(tokens, '.2f', 'x')} ({_fmt(latency, '.2f', 'x')})"

    def accuracy(c, m) -> str:
        cell = cells.get((c, m), {})
        if cell.get("accuracy") is None:
            return MISSING
        interval = cell["interval"]
        return f"{cell['accuracy']:.1f}" + ("" if interval is None or interval.low is None else f" {format_interval(interval)}")

    parts = [
        f"# Skip-Thinking report: {run_id}",
        "## Accuracy (%)",
        "With a 95 % interval: Wilson for one run; mean ± t over runs where a cell has several (seeds).",
        grid(accuracy),
    ]
    comparisons = paired_comparisons(correctness or {})
    if comparisons:
        parts += [
            "## Paired comparisons",
            "Accuracy difference on the same test questions, in percentage points, with its 95 % interval "
            "and the two-sided p-value of a paired t-test over questions.",
            _markdown_table(
                ["comparison", "questions", "difference (pp)", "95 % interval", "p"],
                [[f"{a} − {b}", str(t.n), f"{t.mean_difference:+.1f}", format_interval(t.interval, "+.1f"), f"{t.p_value:.3g}"] for a, b, t in comparisons],
            ),
        ]
    parts += [
        "## Mean generated tokens",
        grid(metric("mean_new_tokens", ".1f")),
        "## Speedup vs FT",
        "FT / method in generated tokens, and in batch-1 median latency (in parentheses).",
        grid(speed),
        "## Speed",
        _markdown_table(
            ["dataset", "method", "n", "latency (ms, batch 1)", "throughput (questions/s)"],
            [
                [c, m, _fmt(cell["n"], ".0f"), _fmt(None if cell["latency_median_s"] is None else 1000 * cell["latency_median_s"], ".1f"), _fmt(cell["throughput_qps"], ".1f")]
                for c in columns
                for m in methods
                if (cell := cells.get((c, m))) is not None
            ],
        ),
    ]
    if any(cell["runs"] > 1 for cell in cells.values()):
        parts.append("Cells with several runs (seeds) show their mean.")
    if figures:
        parts.append("## Figures")
        parts += [f"![{name}]({path.name})" for name, path in figures.items()]
    if examples or skip_examples or skip_note:
        parts.append(render_examples(examples, skip_examples, skip_note))
    return "\n\n".join(parts) + "\n"


# Each method against FT (the paper's baseline), and STT against the CWT-SBC student it skips from.
PAIRED_BASELINES = (("ft", [m for m in METHODS if m != "ft"]), ("cwt-sbc", ["stt"]))


def paired_comparisons(correctness: Mapping[str, Mapping[str, bool]]):
    """(method, baseline, PairedTest in percentage points) over the questions both answered."""
    out = []
    for baseline, others in PAIRED_BASELINES:
        for method in others:
            a, b = correctness.get(method), correctness.get(baseline)
            if not a or not b:
                continue
            shared = sorted(set(a) & set(b))
            if len(shared) < 2:
                continue
            out.append((method, baseline, paired_t_test([100.0 * a[q] for q in shared], [100.0 * b[q] for q in shared])))
    return out


# ---- examples ---------------------------------------------------------------------------

# Long enough for any real rationale; a degenerate student's runaway output is cut here.
MAX_OUTPUT_CHARS = 600


@dataclass(frozen=True)
class MethodOutput:
    output: str
    predicted: Optional[str]
    correct: bool


@dataclass(frozen=True)
class QuestionExample:
    """One test question and every method's raw output for it (STT's includes `[j] [thought]`)."""

    sample_id: str
    question: str
    gold: str
    outputs: Mapping[str, MethodOutput]


@dataclass(frozen=True)
class SkipExample:
    """One skip-data training item: its chunks, and which the CWT-SBC student could do without."""

    sample_id: str
    question: str
    chunks: Sequence[str]
    skip_mask: Sequence[bool]
    answer: str


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_<|~])")


def escape_markdown(text: str) -> str:
    """Literal text inside markdown (and a table cell): whitespace runs collapsed, specials escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _shorten(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rstrip() + " …"


def render_skip_example(item: SkipExample) -> str:
    """`q ### [1] c_1 [2] ~~c_2~~ … [answer] a`: the chunks STT learns to skip are struck through."""
    pieces = [escape_markdown(item.question), f"`{SEP}`"]
    for j, (chunk, skipped) in enumerate(zip(item.chunks, item.skip_mask), start=1):
        text = escape_markdown(chunk)
        pieces += [f"`{chunk_marker(j)}`", f"~~{text}~~" if skipped and text else text]
    pieces += [f"`{ANSWER}`", escape_markdown(item.answer)]
    return " ".join(pieces)


def render_examples(examples: Sequence[QuestionExample], skip_examples: Sequence[SkipExample], skip_note: Optional[str] = None) -> str:
    """`skip_note` says why there are no skip examples (e.g. no item passed the baseline check)."""
    parts = ["## Examples"]
    if examples:
        parts.append(
            "The same test questions for every method: FT writes its whole rationale before `-->`; CWT writes "
            "chunks `[1] … [M]` then `[answer]`; STT writes `[j] [thought]` where it skips a chunk."
        )
    for i, ex in enumerate(examples, start=1):
        parts += [
            f"### Question {i} (`{ex.sample_id}`)",
            f"> {escape_markdown(ex.question)}",
            f"Gold answer: **{escape_markdown(ex.gold)}**",
            _markdown_table(
                ["method", "output", "predicted", "correct"],
                [
                    [m, escape_markdown(_shorten(o.output)) or MISSING, MISSING if o.predicted is None else escape_markdown(o.predicted), "✓" if o.correct else "✗"]
                    for m in _method_order(ex.outputs)
                    for o in [ex.outputs[m]]
                ],
            ),
        ]
    if skip_examples:
        parts += [
            "### Skip data",
            "Training items as STT sees them: the chunks the CWT-SBC student could do without are struck through "
            "(STT's targets write `[j] [thought]` in their place).",
            "\n".join(f"- `{s.sample_id}` ({sum(s.skip_mask)} of {len(s.skip_mask)} chunks skipped): {render_skip_example(s)}" for s in skip_examples),
        ]
    elif skip_note:
        parts += ["### Skip data", skip_note]
    return "\n\n".join(parts)


def render_table(rows: Sequence[Mapping]) -> str:
    """A plain-text table, one line per (dataset, method), for the terminal."""
    cells = _cells(rows)
    columns, methods = _layout(cells)
    header = ["dataset", "method", "n", "acc %", "95% CI", "tokens", "lat ms", "q/s", "vs FT tok", "vs FT lat"]
    body = []
    for c in columns:
        for m in methods:
            cell = cells.get((c, m))
            if cell is None:
                continue
            latency = cell["latency_median_s"]
            body.append([
                c, m, _fmt(cell["n"], ".0f"), _fmt(cell["accuracy"], ".1f"), format_interval(cell["interval"]), _fmt(cell["mean_new_tokens"], ".1f"),
                _fmt(None if latency is None else 1000 * latency, ".1f"), _fmt(cell["throughput_qps"], ".1f"),
                _fmt(_speedup(cells, c, m, "mean_new_tokens"), ".2f", "x"), _fmt(_speedup(cells, c, m, "latency_median_s"), ".2f", "x"),
            ])
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))) for r in [header, *body]]
    return "\n".join(lines)


# ---- figures ----------------------------------------------------------------------------


def _error_bars(value: float, interval: Optional[Interval]) -> tuple[float, float]:
    if interval is None or interval.low is None:
        return 0.0, 0.0
    return max(0.0, value - interval.low), max(0.0, interval.high - value)


def plot_accuracy_vs_tokens(rows: Sequence[Mapping], path: Path) -> Path:
    cells = _cells(rows)
    columns, methods = _layout(cells)
    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    markers = "osD^vP*X"
    for mi, m in enumerate(methods):
        labelled = False
        for ci, c in enumerate(columns):
            cell = cells.get((c, m))
            if cell is None or cell["accuracy"] is None or cell["mean_new_tokens"] is None:
                continue
            below, above = _error_bars(cell["accuracy"], cell["interval"])
            ax.errorbar(cell["mean_new_tokens"], cell["accuracy"], yerr=[[below], [above]], color=f"C{mi}", fmt=markers[ci % len(markers)],
                        capsize=3, label=None if labelled else m)
            labelled = True
    if len(columns) > 1:  # colour = method, marker = dataset
        for ci, c in enumerate(columns):
            ax.scatter([], [], color="grey", marker=markers[ci % len(markers)], label=c)
    ax.set_xlabel("mean generated tokens")
    ax.set_ylabel("accuracy (%), 95 % interval")
    ax.set_title("Accuracy against generated tokens")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def plot_skip_rates(skip_rates: Mapping[str, Sequence[float]], path: Path, samples: Optional[Mapping[str, int]] = None) -> Path:
    """Bars per chunk position; Wilson error bars when the number of skip samples is known."""
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    width = 0.8 / max(len(skip_rates), 1)
    for k, (label, rates) in enumerate(skip_rates.items()):
        xs = [j + 1 + (k - (len(skip_rates) - 1) / 2) * width for j in range(len(rates))]
        heights = [100 * r for r in rates]
        n = (samples or {}).get(label)
        yerr = None
        if n:
            bars = [_error_bars(h, wilson_interval(round(r * n), n).scaled(100)) for h, r in zip(heights, rates)]
            yerr = [[b[0] for b in bars], [b[1] for b in bars]]
        ax.bar(xs, heights, width=width, label=label, yerr=yerr, capsize=3 if yerr else 0)
    longest = max((len(r) for r in skip_rates.values()), default=0)
    ax.set_xticks(range(1, longest + 1))
    ax.set_xlabel("chunk position j")
    ax.set_ylabel("skipped (% of skip samples)")
    ax.set_title("Per-position skip rates")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def smooth(values: Sequence[float], span: int) -> list[float]:
    """Exponential moving average with bias correction (the first points are not pulled to 0)."""
    alpha = 2.0 / (span + 1.0)
    out, average, weight = [], 0.0, 0.0
    for v in values:
        average = (1 - alpha) * average + alpha * v
        weight = (1 - alpha) * weight + alpha
        out.append(average / weight)
    return out


def plot_loss_curves(loss_curves: Mapping[str, Sequence[tuple[int, float]]], path: Path) -> Path:
    """Raw losses faint, their moving average solid, on a log scale (losses span decades)."""
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for i, (label, points) in enumerate(loss_curves.items()):
        pts = [p for p in sorted(points) if p[1] > 0]
        steps, losses = [p[0] for p in pts], [p[1] for p in pts]
        ax.plot(steps, losses, color=f"C{i}", alpha=0.25, linewidth=0.8)
        ax.plot(steps, smooth(losses, span=max(1, len(losses) // 20)), color=f"C{i}", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("optimisation step")
    ax.set_ylabel("training loss (log scale; smoothed)")
    ax.set_title("Training loss")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def embed_figures(markdown: str, figures: Mapping[str, Path]) -> str:
    """The report with each `![name](file.png)` as an inline data URI, for a viewer that cannot
    read the report's directory (the Prefect UI's markdown artifact)."""
    for path in figures.values():
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        markdown = markdown.replace(f"]({Path(path).name})", f"](data:image/png;base64,{data})")
    return markdown


def write_report(
    out_dir: Path,
    run_id: str,
    rows: Sequence[Mapping],
    skip_rates: Mapping[str, Sequence[float]],
    loss_curves: Mapping[str, Sequence[tuple[int, float]]],
    *,
    skip_samples: Optional[Mapping[str, int]] = None,
    correctness: Optional[Mapping[str, Mapping[str, bool]]] = None,
    examples: Sequence[QuestionExample] = (),
    skip_examples: Sequence[SkipExample] = (),
    skip_note: Optional[str] = None,
) -> dict[str, Path]:
    """Write `report.md` and the figures that have data; returns {name: path}.

    Names: `markdown`, `accuracy_vs_tokens`, `skip_rates`, `loss_curves`. `skip_samples` is the
    number of skip samples per `skip_rates` label (for the error bars).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Path] = {}
    if rows:
        figures["accuracy_vs_tokens"] = plot_accuracy_vs_tokens(rows, out_dir / "accuracy_vs_tokens.png")
    if any(skip_rates.values()):
        figures["skip_rates"] = plot_skip_rates({k: v for k, v in skip_rates.items() if v}, out_dir / "skip_rates.png", skip_samples)
    if any(loss_curves.values()):
        figures["loss_curves"] = plot_loss_curves({k: v for k, v in loss_curves.items() if v}, out_dir / "loss_curves.png")
    markdown = out_dir / "report.md"
    markdown.write_text(render_markdown(run_id, rows, figures, correctness=correctness, examples=examples, skip_examples=skip_examples, skip_note=skip_note))
    return {"markdown": markdown, **figures}
