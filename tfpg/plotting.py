"""Learning-curve plots from a run's CSV log."""

from __future__ import annotations

import csv
import math


def plot_learning_curve(csv_path: str, png_path: str, title: str = "") -> str:
    """Plots mean episode return (and evaluation return, if logged) against env steps.

    Args:
        csv_path: a CSV written by `tfpg.callbacks.CSVLogger`.
        png_path: the PNG to write.
        title: the plot title.

    Returns:
        `png_path`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns: dict[str, list[float]] = {}
    with open(csv_path, newline="") as file:
        for row in csv.DictReader(file):
            for key, value in row.items():
                try:
                    columns.setdefault(key, []).append(float(value))
                except (TypeError, ValueError):
                    columns.setdefault(key, []).append(math.nan)
    figure, axes = plt.subplots(figsize=(7, 4))
    steps = columns.get("total_steps", [])
    for key, label in (("episode_return", "training (last 100 episodes)"),
                       ("eval_mean_return", "evaluation")):
        if key in columns:
            pairs = [(s, v) for s, v in zip(steps, columns[key]) if not math.isnan(v)]
            if pairs:
                axes.plot(*zip(*pairs), label=label)
    axes.set_xlabel("environment steps")
    axes.set_ylabel("episode return")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(png_path, dpi=100)
    plt.close(figure)
    return png_path
