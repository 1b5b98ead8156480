"""One trial of `tfpg.sweep`, run by Ray Tune in a worker: the launcher in the trial's run directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from tfpg.run_summary import read_run

POLL_SECONDS = 2.0


def tfpg_trial(config: dict, plans: dict) -> None:
    """A Tune function trainable: runs the launcher of trial `config["run"]` and reports its progress and
    final return."""
    from ray import tune

    settings = plans[config["run"]]
    logdir = settings["logdir"]
    evaluation = os.path.join(logdir, "evaluation.json")
    if not os.path.exists(evaluation):
        environment = {**os.environ, "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
        os.makedirs(os.path.dirname(logdir), exist_ok=True)
        with open(logdir + ".log", "a") as log:
            process = subprocess.Popen(settings["command"], cwd=settings["cwd"], env=environment, stdout=log,
                                       stderr=subprocess.STDOUT)
            reported = 0
            try:
                while process.poll() is None:
                    time.sleep(POLL_SECONDS)
                    reported = _report_new_rows(tune, logdir, reported)
            finally:
                if process.poll() is None:  # the trial was stopped: the launcher checkpoints on SIGTERM
                    process.send_signal(signal.SIGTERM)
                    process.wait(timeout=120)
        if process.returncode != 0:
            raise RuntimeError(f"tfpg.train exited with status {process.returncode}; see {logdir}.log")
    with open(evaluation) as file:
        result = json.load(file)
    tune.report({"eval_mean_return": result["mean_return"], "total_steps": result["total_steps"]})


def _report_new_rows(tune, logdir: str, reported: int) -> int:
    run = read_run(logdir)
    for steps, value in list(zip(run.steps, run.returns))[reported:]:
        tune.report({"total_steps": steps, "episode_return": value})
    return max(reported, len(run.steps))
