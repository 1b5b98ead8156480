"""`python -m tfpg.sweep`: seeds × a grid as Ray Tune trials, each a tfpg run directory, and its summary."""

import json
import os
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tfpg.sweep_plan import Trial, check_extra, launcher_command, parse_grid, parse_search, trials

from helpers import readme_blocks, substituted

pytest.importorskip("ray.tune")
# One xdist worker runs these one after another (make test's --dist loadgroup): two Ray clusters at once on a
# small machine starve each other of CPUs.
pytestmark = [pytest.mark.ray, pytest.mark.xdist_group("ray")]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_grid_values_are_typed_and_checked_against_the_algorithm():
    grid = parse_grid(["learning_rate=1e-4,3e-4", "hidden_sizes=64x64,32", "normalize_advantages=true,false"], "a2c")
    assert grid == {"learning_rate": [1e-4, 3e-4], "hidden_sizes": [(64, 64), (32,)],
                    "normalize_advantages": [True, False]}
    for entries, message in [(["clip_ratio=0.1"], "not a hyperparameter of a2c"),
                             (["learning_rate"], "must be name=value1,value2"),
                             (["learning_rate=fast"], "is not a float"),
                             (["learning_rate=-1"], "Invalid hyperparameter learning_rate=-1.0"),
                             (["gamma=0.9", "gamma=0.99"], "twice")]:
        with pytest.raises(ValueError, match=message):
            parse_grid(entries, "a2c")
    planned = trials(["CartPole-v1", "ALE/Pong-v5"], {"gamma": [0.9, 0.99]}, [0, 1])
    assert len(planned) == 8 and planned[0] == Trial("CartPole-v1", (("gamma", 0.9),), 0)
    assert planned[-1].logdir("/s") == "/s/ALE_Pong-v5/gamma=0.99/seed1"


def test_extra_flags_cannot_contradict_what_the_sweep_sets_per_trial():
    check_extra(["--num_envs=1", "--noasync_envs", "--checkpoint_seconds=5"], ["learning_rate"])
    for extra, varied, message in [(["--seed=5"], [], "use --seeds instead"),
                                   (["--logdir=/tmp/x"], [], "use --outdir instead"),
                                   (["--env=Hopper-v5"], [], "use --envs instead"),
                                   (["--steps=10"], [], "use --steps instead"),
                                   (["--resume"], [], "resumes"), (["--noresume"], [], "resumes"),
                                   (["--rollout_steps=32"], ["rollout_steps"], "which the sweep varies"),
                                   (["num_envs=1"], [], "not a tfpg.train flag")]:
        with pytest.raises(ValueError, match=message):
            check_extra(extra, varied)


def test_a_sweep_refuses_contradicting_extras_unusable_outdirs_and_impossible_trials_before_running_any(tmp_path):
    common = [sys.executable, "-m", "tfpg.sweep", "--algo=a2c", "--envs=CartPole-v1", "--seeds=0", "--steps=64"]
    (tmp_path / "a-file").write_text("")
    sweep, under_a_file = tmp_path / "sweep", tmp_path / "a-file" / "sweep"
    for extra, outdir, message in [
            (["--grid=rollout_steps=32,64", "--extra=--rollout_steps=32"], sweep, "which the sweep varies"),
            (["--cpus_per_trial=1000"], sweep, "no trial could ever start"),
            ([], under_a_file, "a-file is a file")]:
        result = subprocess.run([*common, *extra, f"--outdir={outdir}"], cwd=ROOT, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
        assert "Traceback" not in result.stderr and not outdir.exists()


def test_a_trial_with_checkpoints_resumes_with_the_settings_of_its_run(tmp_path):
    trial = Trial("CartPole-v1", (("learning_rate", 1e-3), ("hidden_sizes", (8, 8))), 3)
    logdir = str(tmp_path / "run")
    fresh = launcher_command(trial, "a2c", 500, logdir, ["--num_envs=2"])
    assert fresh[-4:] == ["--seed=3", "--learning_rate=0.001", "--hidden_sizes=8,8", "--num_envs=2"]
    os.makedirs(os.path.join(logdir, "checkpoints"))
    open(os.path.join(logdir, "checkpoints", "checkpoint"), "w").close()
    resumed = launcher_command(trial, "a2c", 500, logdir, ["--num_envs=2"])
    assert resumed[-1] == "--resume" and not any(part.startswith("--learning_rate") for part in resumed)


def _readme_sweep_command(outdir):
    """The README's sweep command, on one env and one configuration of two seeds with small batches."""
    [code] = [code for _, code in readme_blocks() if "python -m tfpg.sweep" in code]
    code = substituted(code, [("--envs=Hopper-v5,Walker2d-v5", "--envs=Hopper-v5"), ("--seeds=0,1,2,3,4", "--seeds=0,1"),
                              ("--steps=1000000", "--steps=192"), ("--grid=learning_rate=1e-4,3e-4", "--grid=learning_rate=3e-4"),
                              ("--grid=clip_range=0.1,0.2", "--grid=clip_range=0.2"), ("--outdir=runs/ppo-sweep", "")])
    words = shlex.split(code.replace("\\\n", " "))
    assert words[:3] == ["python", "-m", "tfpg.sweep"], words
    return [sys.executable, *words[1:], f"--outdir={outdir}", "--extra=--rollout_steps=64", "--extra=--minibatch_size=32",
            "--extra=--eval_episodes=1"]


def test_the_readme_sweep_stopped_by_ctrl_c_says_so_and_run_again_finishes_every_trial_then_skips_them(tmp_path):
    outdir = tmp_path / "sweep"
    command = _readme_sweep_command(outdir)
    stopped = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    configuration = outdir / "Hopper-v5" / "learning_rate=0.0003,clip_range=0.2"
    deadline = time.monotonic() + 300
    while not list(configuration.glob("seed*.log")) and stopped.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    stopped.send_signal(signal.SIGINT)   # a trial's launcher has started, none can have finished
    out, err = stopped.communicate(timeout=300)
    assert stopped.returncode == 130, out[-3000:] + err[-3000:]
    assert "Run the same command again to continue" in err and "Tuner.restore" not in out + err
    assert not list(outdir.glob("Hopper-v5/*/seed*/evaluation.json"))
    first = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    finals = []
    for seed in (0, 1):
        run = configuration / f"seed{seed}"
        with open(run / "evaluation.json") as file:
            finals.append(json.load(file)["mean_return"])
        assert (run / "policy" / "saved_model.pb").exists() and (run / "checkpoints").is_dir()
    summary = (outdir / "summary.md").read_text()
    row = next(line for line in summary.splitlines() if line.startswith(f"| {configuration.name} |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1] == "2/2"
    assert float(cells[2]) == pytest.approx(np.mean(finals), abs=0.5)
    assert float(cells[3]) == pytest.approx(np.median(finals), abs=0.5)
    assert float(cells[4]) == pytest.approx(np.std(finals), abs=0.5)
    assert (outdir / "curves.png").stat().st_size > 10_000
    stamps = {path: path.stat().st_mtime for path in outdir.glob("Hopper-v5/*/seed*/evaluation.json")}
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert {path: path.stat().st_mtime for path in stamps} == stamps  # nothing was trained again


def test_search_values_are_typed_and_checked():
    space = parse_search(["learning_rate=loguniform:1e-5:1e-3", "epochs=int:2:6", "activation=choice:tanh,relu"], "ppo")
    assert space == {"learning_rate": ("loguniform", [1e-5, 1e-3]), "epochs": ("int", [2, 6]),
                     "activation": ("choice", ["tanh", "relu"])}
    for entries, message in [(["learning_rate=normal:0:1"], "the kind must be one of"),
                             (["learning_rate=uniform:1e-3"], "takes low:high"),
                             (["learning_rate=uniform:1e-3:1e-4"], "needs low < high"),
                             (["activation=choice:tanh,swish"], "Invalid hyperparameter activation='swish'"),
                             (["beta=uniform:0:1"], "not a hyperparameter of ppo")]:
        with pytest.raises(ValueError, match=message):
            parse_search(entries, "ppo")


def test_an_optuna_search_runs_each_sampled_configuration_in_its_own_run_directories(tmp_path):
    outdir = tmp_path / "search"
    command = [sys.executable, "-m", "tfpg.sweep", "--algo=a2c", "--envs=CartPole-v1", "--seeds=0", "--steps=400",
               "--search=learning_rate=loguniform:1e-4:1e-2", "--search_trials=2", f"--outdir={outdir}",
               "--extra=--num_envs=2", "--extra=--eval_episodes=2"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    runs = sorted((outdir / "CartPole-v1").glob("learning_rate=*/seed0"))
    assert len(runs) == 2 and all((run / "evaluation.json").exists() for run in runs)
    rates = [float(run.parent.name.split("=")[1]) for run in runs]
    assert all(1e-4 <= rate <= 1e-2 for rate in rates) and rates[0] != rates[1]
    summary = (outdir / "summary.md").read_text()
    assert all(f"| {run.parent.name} | 1/1 |" in summary for run in runs)

