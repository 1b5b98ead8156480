"""Summarise returns-benchmark runs: final deterministic evaluation (mean ± std over seeds) and curves.

    python benchmarks/summarize.py --rundir=benchmarks/runs/ppo --plot=benchmarks/ppo_mujoco.png

Reads each `<rundir>/<env>/seed*/evaluation.json` and `progress.csv`; prints a
Markdown table and writes one learning-curve panel per env (mean over seeds of
the training return, shaded min-max).
"""

import csv
import glob
import json
import os

import numpy as np
from absl import app, flags

flags.DEFINE_string("rundir", "benchmarks/runs/ppo", "Directory holding <env>/seed*/ runs.")
flags.DEFINE_string("plot", None, "PNG path for the learning curves.")
flags.DEFINE_string("title", "", "Plot title prefix.")
FLAGS = flags.FLAGS


def _curve(path):
    steps, returns = [], []
    with open(path, newline="") as file:
        for row in csv.DictReader(file):
            value = float(row["episode_return"]) if row["episode_return"] not in ("", "nan") else np.nan
            steps.append(float(row["total_steps"]))
            returns.append(value)
    return np.array(steps), np.array(returns)


def main(argv):
    del argv
    envs = sorted(d for d in os.listdir(FLAGS.rundir) if os.path.isdir(os.path.join(FLAGS.rundir, d)))
    print("| env | seeds | final eval return (mean ± std over seeds) | per seed | best training return (mean) |")
    print("|---|---|---|---|---|")
    curves = {}
    for env in envs:
        finals, bests = [], []
        curves[env] = []
        for seed_dir in sorted(glob.glob(os.path.join(FLAGS.rundir, env, "seed*"))):
            evaluation = os.path.join(seed_dir, "evaluation.json")
            if not os.path.exists(evaluation):
                continue
            with open(evaluation) as file:
                finals.append(json.load(file)["mean_return"])
            steps, returns = _curve(os.path.join(seed_dir, "progress.csv"))
            bests.append(np.nanmax(returns))
            curves[env].append((steps, returns))
        if finals:
            print(f"| {env} | {len(finals)} | {np.mean(finals):.0f} ± {np.std(finals):.0f} | "
                  f"{', '.join(f'{f:.0f}' for f in finals)} | {np.mean(bests):.0f} |")
    if FLAGS.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        finished = [env for env in envs if curves[env]]
        figure, axes = plt.subplots(1, len(finished), figsize=(5 * len(finished), 3.6), squeeze=False)
        for axis, env in zip(axes[0], finished):
            grid = np.linspace(0, min(c[0][-1] for c in curves[env]), 200)
            interpolated = np.array([np.interp(grid, s, np.nan_to_num(r, nan=r[~np.isnan(r)][0]))
                                     for s, r in curves[env]])
            axis.plot(grid, interpolated.mean(0), label=f"mean of {len(interpolated)} seeds")
            axis.fill_between(grid, interpolated.min(0), interpolated.max(0), alpha=0.25, label="min-max")
            axis.set_title(f"{FLAGS.title}{env}")
            axis.set_xlabel("environment steps")
            axis.set_ylabel("training episode return (last 100)")
            axis.grid(alpha=0.3)
            axis.legend(loc="upper left")
        figure.tight_layout()
        figure.savefig(FLAGS.plot, dpi=90)
        print(f"\nplot: {FLAGS.plot}")


if __name__ == "__main__":
    app.run(main)
