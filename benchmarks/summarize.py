"""Summarise returns-benchmark runs: final deterministic evaluation (mean ± std over seeds) and curves.

    python benchmarks/summarize.py --rundir=benchmarks/runs/ppo --plot=benchmarks/ppo_mujoco.png

Reads each `<rundir>/<env>/seed*/evaluation.json` and `progress.csv`; prints a
Markdown table and writes one learning-curve panel per env (mean over seeds of
the training return, shaded min-max). The last column is the highest point of
the seed-mean training curve: the maximum over the run of the mean over seeds,
the form of Tianshou's published figures (on training episodes here).
"""

import glob
import os

import numpy as np
from absl import flags

from tfpg.launcher import run_program
from tfpg.run_summary import final_statistics, mean_curve, plot_curves, read_run

flags.DEFINE_string("rundir", "benchmarks/runs/ppo", "Directory holding <env>/seed*/ runs.")
flags.DEFINE_string("plot", None, "PNG path for the learning curves.")
flags.DEFINE_string("title", "", "Plot title prefix.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    envs = sorted(d for d in os.listdir(FLAGS.rundir) if os.path.isdir(os.path.join(FLAGS.rundir, d)))
    print("| env | seeds | final eval return (mean ± std over seeds) | per seed | best training return (mean) | "
          "highest point of the seed-mean training curve |")
    print("|---|---|---|---|---|---|")
    panels = {}
    for env in envs:
        runs = [read_run(path) for path in sorted(glob.glob(os.path.join(FLAGS.rundir, env, "seed*")))
                if os.path.isdir(path)]
        finished = [run for run in runs if run.final_return is not None]
        if not finished:
            continue
        stats = final_statistics(finished)
        best = np.mean([np.nanmax(run.returns) for run in finished])
        _, mean, _, _ = mean_curve(finished)
        print(f"| {env} | {stats['runs']} | {stats['mean']:.0f} ± {stats['std']:.0f} | "
              f"{', '.join(f'{f:.0f}' for f in stats['finals'])} | {best:.0f} | {np.max(mean):.0f} |")
        panels[env] = {env: finished}
    if FLAGS.plot and panels:
        plot_curves(panels, FLAGS.plot, title=FLAGS.title)
        print(f"\nplot: {FLAGS.plot}")


if __name__ == "__main__":
    run_program(main)
