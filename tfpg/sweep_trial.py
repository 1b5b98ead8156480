"""The trials of `tfpg.sweep`, run by Ray Tune in its workers: the launcher in each trial's run directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import numpy as np

from tfpg.run_summary import read_run
from tfpg.sweep_plan import Trial, launcher_command

POLL_SECONDS = 2.0


def tfpg_trial(config: dict, plans: dict) -> None:
    """A Tune function trainable for a grid sweep: runs the launcher of trial `config["run"]`, reporting the
    rows of its `progress.csv` as they appear and then its final return (`eval_mean_return`)."""
    from ray import tune

    plan = plans[config["run"]]
    final = run_launcher(plan["logdir"], plan["command"], plan["cwd"], report=tune.report)
    tune.report({"eval_mean_return": final["mean_return"], "total_steps": final["total_steps"]})


def search_trial(config: dict, context: dict) -> None:
    """A Tune function trainable for a search: runs the sampled configuration `config` for every seed, one
    run directory each, and reports the mean of their final returns (`eval_mean_return`)."""
    from ray import tune

    configuration = tuple((name, tuple(value) if isinstance(value, list) else value)
                          for name, value in sorted(config.items()))
    finals = []
    for seed in context["seeds"]:
        trial = Trial(context["env"], configuration, seed)
        logdir = trial.logdir(context["outdir"])
        command = launcher_command(trial, context["algo"], context["steps"], logdir, context["extra"])
        finals.append(run_launcher(logdir, command, context["cwd"])["mean_return"])
    tune.report({"eval_mean_return": float(np.mean(finals)), "seeds": len(finals)})


def run_launcher(logdir: str, command: list[str], cwd: str, report=None) -> dict:
    """Runs `command` (a `tfpg.train` run in `logdir`) unless the run has finished; returns its evaluation.

    With `report`, each new row of the run's progress is passed to it as it
    appears. A stopped trial sends the launcher SIGTERM, which checkpoints.

    Raises:
        RuntimeError: the launcher failed (its output is in `<logdir>.log`).
    """
    evaluation = os.path.join(logdir, "evaluation.json")
    if not os.path.exists(evaluation):
        environment = {**os.environ, "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
        os.makedirs(os.path.dirname(logdir), exist_ok=True)
        with open(logdir + ".log", "a") as log:
            process = subprocess.Popen(command, cwd=cwd, env=environment, stdout=log, stderr=subprocess.STDOUT)
            reported = 0
            try:
                while process.poll() is None:
                    time.sleep(POLL_SECONDS)
                    if report is not None:
                        reported = _report_new_rows(report, logdir, reported)
            finally:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                    process.wait(timeout=120)
        if process.returncode != 0:
            raise RuntimeError(f"tfpg.train exited with status {process.returncode}; see {logdir}.log")
    with open(evaluation) as file:
        return json.load(file)


def _report_new_rows(report, logdir: str, reported: int) -> int:
    run = read_run(logdir)
    for steps, value in list(zip(run.steps, run.returns))[reported:]:
        report({"total_steps": steps, "episode_return": value})
    return max(reported, len(run.steps))
