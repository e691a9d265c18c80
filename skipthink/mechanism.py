"""The over-smoothing analysis: core-token loss and confidence over training, FT against CWT.

Input: the train stage's summaries of runs made with `training.core_token_stats` (each has
method, dataset, seed and one row per epoch from skipthink/core_tokens.py). Output: per
(dataset, method, epoch) the mean and 95 % interval over seeds, and at the last epoch every seed
reached, each chunk-wise method paired with FT by seed on core loss, rest loss and their ratio
(core / rest: below FT's means learning has shifted toward core tokens).
"""

from __future__ import annotations

import statistics
from typing import Sequence

from skipthink.stats import mean_interval, paired_t_test

FIGURES = ("core_loss", "rest_loss", "core_confidence", "rest_confidence")


def _runs(summaries: Sequence[dict]) -> dict[tuple[str, str], dict[int, dict[int, dict]]]:
    """(dataset, method) -> seed -> epoch -> row."""
    out: dict = {}
    for s in summaries:
        if not s.get("core_tokens"):
            continue
        by_epoch = {r["epoch"]: dict(r, ratio=r["core_loss"] / r["rest_loss"] if r["rest_loss"] else None) for r in s["core_tokens"]}
        out.setdefault((s["dataset"], s["method"]), {})[s["seed"]] = by_epoch
    return out


def _interval(values: list[float]) -> dict:
    iv = mean_interval(values)
    return {"mean": round(iv.estimate, 4), "ci95": None if iv.half_width is None else round(iv.half_width, 4)}


def over_training(summaries: Sequence[dict]) -> dict:
    """{dataset: {method: [{epoch, seeds, FIGURE: {mean, ci95}, ratio: {...}}]}}."""
    out: dict = {}
    for (dataset, method), seeds in sorted(_runs(summaries).items()):
        epochs = sorted(set.intersection(*(set(e) for e in seeds.values())))
        rows = []
        for epoch in epochs:
            row: dict = {"epoch": epoch, "seeds": len(seeds)}
            for key in (*FIGURES, "ratio"):
                vals = [seeds[s][epoch][key] for s in seeds if seeds[s][epoch].get(key) is not None]
                if vals:
                    row[key] = _interval(vals)
            rows.append(row)
        out.setdefault(dataset, {})[method] = rows
    return out


def against_ft(summaries: Sequence[dict]) -> list[dict]:
    """Each chunk-wise method minus FT at the last epoch both reached, paired by seed."""
    runs = _runs(summaries)
    out = []
    for (dataset, method), seeds in sorted(runs.items()):
        ft = runs.get((dataset, "ft"))
        if method == "ft" or ft is None:
            continue
        common = sorted(set(seeds) & set(ft))
        if len(common) < 2:
            continue
        reached = set.intersection(*(set(seeds[s]) & set(ft[s]) for s in common))
        if not reached:
            continue
        epoch = max(reached)
        for key in ("core_loss", "rest_loss", "ratio"):
            a = [seeds[s][epoch][key] for s in common]
            b = [ft[s][epoch][key] for s in common]
            test = paired_t_test(a, b)
            out.append({"dataset": dataset, "method": method, "figure": key, "epoch": epoch, "seeds": len(common),
                        "method_mean": round(statistics.fmean(a), 4), "ft_mean": round(statistics.fmean(b), 4),
                        "delta_mean": round(test.mean_difference, 4), "ci95": [round(test.interval.low, 4), round(test.interval.high, 4)],
                        "p_value": round(test.p_value, 4)})
    return out


def figure(curves: dict, path) -> None:
    """Core and rest loss per epoch, one panel per dataset, a line per method (error bars: 95 %)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    datasets = sorted(curves)
    fig = Figure(figsize=(5.5 * len(datasets), 4))
    FigureCanvasAgg(fig)
    for i, dataset in enumerate(datasets):
        ax = fig.add_subplot(1, len(datasets), i + 1)
        for method, rows in curves[dataset].items():
            for key, style in (("core_loss", "-"), ("rest_loss", ":")):
                xs = [r["epoch"] for r in rows if key in r]
                ys = [r[key]["mean"] for r in rows if key in r]
                err = [r[key]["ci95"] or 0.0 for r in rows if key in r]
                ax.errorbar(xs, ys, yerr=err, linestyle=style, marker="o", markersize=3, capsize=2, label=f"{method} {key.split('_')[0]}")
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation loss per target token")
        ax.set_title(f"{dataset}: core (solid) vs rest (dotted)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
