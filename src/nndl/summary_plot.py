"""A sweep's ``curves.png``: the monitored metric against epoch, one line of its own colour and marker per run.

Diverged runs are dashed and runs that did not learn dotted; the runs with nothing to draw are listed under the
plot, with why. A sweep of one validation per run (1-epoch sweeps) becomes a sorted dot chart, one row per run.
"""

from pathlib import Path
from typing import Any

MARKERS = "os^vDP*Xph<>"


def styles(n: int) -> list[tuple[Any, str]]:
    """A colour and a marker for each of ``n`` runs, no two runs alike: tab10 or tab20, else an even spread of
    a perceptually uniform colormap; the markers cycle besides."""
    from matplotlib import colormaps

    if n <= 10:
        colors = [colormaps["tab10"](i) for i in range(n)]
    elif n <= 20:
        colors = [colormaps["tab20"](i) for i in range(n)]
    else:
        colors = [colormaps["turbo"](0.05 + 0.9 * i / (n - 1)) for i in range(n)]
    return [(color, MARKERS[i % len(MARKERS)]) for i, color in enumerate(colors)]


def plot(
    summaries: list[tuple[dict[str, Any], dict[int, float]]],
    path: Path,
    monitor: str = "val/acc",
    mode: str = "max",
    not_started: list[dict[str, Any]] | None = None,
) -> None:
    """The monitored metric against epoch, one line of its own colour and marker per run; a sweep whose runs
    validated once (1-epoch sweeps) as one dot per run, sorted. Diverged runs dashed, runs that did not learn
    dotted, and the runs with nothing to draw listed under the plot, with why."""
    from matplotlib.ticker import MaxNLocator

    from nndl.figures import agg_figure  # matplotlib loads only when a summary is drawn

    drawn = [(row, curve) for row, curve in summaries if curve]
    missing = [row for row, curve in summaries if not curve] + list(not_started or [])
    epochs = {epoch for _, curve in drawn for epoch in curve}
    one_epoch = len(epochs) == 1 and len(drawn) > 1
    height = max(3.0, 0.28 * len(drawn) + 1.2) if one_epoch else 5.0
    fig = agg_figure(8, height)
    ax = fig.add_subplot()
    label_of = {"diverged": " (diverged)", "no_learning": " (no learning)"}
    if one_epoch:  # one point per run: a dot chart, sorted, each run on its own row
        order = sorted(drawn, key=lambda rc: next(iter(rc[1].values())), reverse=mode == "min")
        for y, ((_, curve), (color, marker)) in enumerate(zip(order, styles(len(order)), strict=True)):
            value = next(iter(curve.values()))
            ax.plot([value], [y], marker=marker, color=color, markersize=8, linestyle="none")
            ax.annotate(f"{value:.4f}", (value, y), xytext=(6, 0), textcoords="offset points", va="center",
                        fontsize="small")  # fmt: skip
        ax.set_yticks(range(len(order)), [row["run"] + label_of.get(row["status"], "") for row, _ in order])
        ax.set(xlabel=monitor, title=f"{monitor} after epoch {next(iter(epochs))} (counted from 0)")
        ax.grid(alpha=0.3, axis="x")
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        for (row, curve), (color, marker) in zip(drawn, styles(len(drawn)), strict=True):
            linestyle = {"diverged": "--", "no_learning": ":"}.get(row["status"], "-")
            ax.plot(list(curve), list(curve.values()), marker=marker, markersize=4, color=color, linestyle=linestyle,
                    label=row["run"] + label_of.get(row["status"], ""))  # fmt: skip
        ax.set(xlabel="epoch (counted from 0)", ylabel=monitor, title=f"{monitor} by epoch")
        if len(epochs) == 1:
            ax.set_xticks(sorted(epochs))
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the plot
    if missing:
        why = {"diverged": "diverged before its first validation", "failed": "failed", "not started": "not started",
               "interrupted": "interrupted before its first validation"}  # fmt: skip
        lines = [f"{row['run']}: {why.get(row['status'], row['status'] + ', no validation')}" for row in missing]
        shown = lines[:12] + ([f"... and {len(lines) - 12} more"] if len(lines) > 12 else [])
        fig.text(0.01, -0.02, "Not drawn: " + "; ".join(shown), fontsize="small", va="top", wrap=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
