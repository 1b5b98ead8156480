"""Summaries of several runs: final returns over seeds as a table, learning curves as mean and spread."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os

import numpy as np


@dataclasses.dataclass
class Run:
    """One run directory's results.

    Attributes:
        path: the run directory.
        final_return: mean return of its final deterministic evaluation (`evaluation.json`), or None if
            the run has not finished.
        steps: env steps at each logged iteration (`progress.csv`).
        returns: the training episode return (mean of the last 100 episodes) at each logged iteration.
    """

    path: str
    final_return: float | None
    steps: np.ndarray
    returns: np.ndarray


def read_run(path: str) -> Run:
    """Reads `evaluation.json` and `progress.csv` of a tfpg run directory (either may be missing)."""
    final = None
    evaluation = os.path.join(path, "evaluation.json")
    if os.path.exists(evaluation):
        with open(evaluation) as file:
            final = float(json.load(file)["mean_return"])
    steps, returns = [], []
    progress = os.path.join(path, "progress.csv")
    if os.path.exists(progress):
        with open(progress, newline="") as file:
            for row in csv.DictReader(file):
                try:
                    steps.append(float(row["total_steps"]))
                    returns.append(float(row.get("episode_return") or "nan"))
                except (KeyError, ValueError):
                    continue
    return Run(path, final, np.array(steps), np.array(returns))


def final_statistics(runs: list[Run]) -> dict:
    """Mean, median and std (population) over the finished runs' final returns, their count and the values."""
    finals = [run.final_return for run in runs if run.final_return is not None]
    if not finals:
        return {"runs": 0, "mean": math.nan, "median": math.nan, "std": math.nan, "finals": []}
    return {"runs": len(finals), "mean": float(np.mean(finals)), "median": float(np.median(finals)),
            "std": float(np.std(finals)), "finals": finals}


def markdown_table(groups: dict[str, list[Run]], label: str = "configuration") -> str:
    """A Markdown table of `final_statistics` per group (e.g. per configuration, over its seeds)."""
    lines = [f"| {label} | seeds finished | final return: mean | median | std | per seed |", "|---|---|---|---|---|---|"]
    for name, runs in groups.items():
        stats = final_statistics(runs)
        per_seed = ", ".join(f"{value:.0f}" for value in stats["finals"])
        lines.append(f"| {name} | {stats['runs']}/{len(runs)} | {stats['mean']:.0f} | {stats['median']:.0f} | "
                     f"{stats['std']:.0f} | {per_seed} |")
    return "\n".join(lines)


def mean_curve(runs: list[Run], points: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(steps, mean, min, max) of the runs' training returns on a common grid up to the shortest run.

    Each curve is linearly interpolated; iterations before a run's first finished
    episode (NaN) take its first logged return.
    """
    curves = [run for run in runs if len(run.steps) and not np.all(np.isnan(run.returns))]
    if not curves:
        return (np.zeros(0),) * 4
    grid = np.linspace(0.0, min(run.steps[-1] for run in curves), points)
    values = np.array([np.interp(grid, run.steps, np.nan_to_num(run.returns, nan=run.returns[~np.isnan(run.returns)][0]))
                       for run in curves])
    return grid, values.mean(axis=0), values.min(axis=0), values.max(axis=0)


def plot_curves(panels: dict[str, dict[str, list[Run]]], png_path: str, title: str = "") -> str:
    """One panel per key of `panels` (e.g. an env), one line per group (mean over its runs, shaded min-max).

    Returns:
        `png_path`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for axis, (panel, groups) in zip(axes[0], panels.items()):
        for name, runs in groups.items():
            grid, mean, low, high = mean_curve(runs)
            if len(grid):
                count = sum(1 for run in runs if len(run.steps))
                line, = axis.plot(grid, mean, label=f"{name} ({count} seeds)" if len(groups) > 1 else
                                  f"mean of {count} seeds")
                axis.fill_between(grid, low, high, alpha=0.2, color=line.get_color())
        axis.set_title(f"{title}{panel}")
        axis.set_xlabel("environment steps")
        axis.set_ylabel("training episode return (last 100)")
        axis.grid(alpha=0.3)
        if axis.get_lines():
            axis.legend(loc="upper left", fontsize="small")
    figure.tight_layout()
    figure.savefig(png_path, dpi=90)
    plt.close(figure)
    return png_path
