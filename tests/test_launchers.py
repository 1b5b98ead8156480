"""`python -m tfpg.train` and `python -m tfpg.evaluate` end to end."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

import tfpg

from helpers import ROOT, read_csv, run

TINY = ["--algo=a2c", "--env=CartPole-v1", "--num_envs=2", "--rollout_steps=16", "--eval_episodes=1",
        "--verbose=0"]


def test_train_writes_a_complete_run_and_resume_continues_it(tmp_path):
    logdir = tmp_path / "run"
    first = run(["-m", "tfpg.train", *TINY, "--steps=320", f"--logdir={logdir}"])
    assert first.returncode == 0, first.stderr[-3000:]
    for name in ("checkpoints", "tensorboard", "progress.csv", "learning_curve.png", "policy/saved_model.pb"):
        assert (logdir / name).exists(), name
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(logdir / "tensorboard"))
    rows = read_csv(logdir / "progress.csv")
    assert [int(r["total_steps"]) for r in rows] == list(range(32, 321, 32))
    assert str(logdir / "policy") in first.stdout
    refused = run(["-m", "tfpg.train", *TINY, "--steps=640", f"--logdir={logdir}"])
    assert refused.returncode != 0 and "--resume" in refused.stderr
    resumed = run(["-m", "tfpg.train", "--env=CartPole-v1", "--num_envs=2", "--eval_episodes=1",
                   "--verbose=0", "--steps=640", "--resume", f"--logdir={logdir}"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = read_csv(logdir / "progress.csv")
    assert [int(r["total_steps"]) for r in rows] == list(range(32, 641, 32))
    assert [int(r["iteration"]) for r in rows] == list(range(20))
    evaluation = run(["-m", "tfpg.evaluate", f"--policy={logdir / 'policy'}", "--env=CartPole-v1",
                      "--episodes=2"])
    assert evaluation.returncode == 0, evaluation.stderr[-3000:]
    assert "mean return" in evaluation.stdout


# The launcher's other usage errors are checked in-process, many at a time, by tests/test_launcher_fuzz.py.
@pytest.mark.parametrize("flags, message", [
    (["--baseline=false"], "--baseline is not a hyperparameter of A2CConfig"),
    (["--resume"], "Cannot resume"),
])
def test_invalid_flags_exit_with_a_usage_message_and_write_nothing(tmp_path, flags, message):
    logdir = tmp_path / "run"
    result = run(["-m", "tfpg.train", "--steps=64", f"--logdir={logdir}", *flags])
    assert result.returncode != 0
    assert message in result.stderr
    assert not logdir.exists()


def _start(logdir, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "tfpg.train", *TINY, "--steps=10000000", f"--logdir={logdir}", *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_for(path, timeout=120):
    deadline = time.time() + timeout
    while not path.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert path.exists(), path


@pytest.fixture
def processes():
    """Launched training processes; any still running at the end of a test are killed."""
    started = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_writes_a_final_checkpoint(tmp_path, sig, processes):
    logdir = tmp_path / "run"
    process = _start(logdir, "--checkpoint_seconds=1000")
    processes.append(process)
    _wait_for(logdir / "progress.csv")
    time.sleep(1.0)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-3000:]
    prefix = tf.train.latest_checkpoint(str(logdir / "checkpoints"))
    assert prefix is not None
    steps = int(tf.train.load_checkpoint(prefix).get_tensor("total_steps/.ATTRIBUTES/VARIABLE_VALUE"))
    assert steps >= 32
    assert int(read_csv(logdir / "progress.csv")[-1]["total_steps"]) <= steps


RESUME = ["--env=CartPole-v1", "--num_envs=2", "--eval_episodes=1", "--verbose=0", "--resume"]


def _saved_steps(logdir):
    prefix = tf.train.latest_checkpoint(str(logdir / "checkpoints"))
    if prefix is None:
        return -1
    return int(tf.train.load_checkpoint(prefix).get_tensor("total_steps/.ATTRIBUTES/VARIABLE_VALUE"))


def _kill_when_a_write_is_in_progress(process, directory, deadline):
    while time.time() < deadline and process.poll() is None:
        if any("_temp" in name for name in os.listdir(directory)):
            process.kill()
            return True
    return False


def test_sigkill_at_random_moments_never_loses_the_run_and_resume_finishes_it(tmp_path, processes):
    # A checkpoint after every tiny iteration; every other round is killed at a random moment, the
    # others while a checkpoint is being written.
    logdir = tmp_path / "run"
    rng = np.random.default_rng(11)
    saved = -1
    for round_ in range(4):
        flags = [*TINY, f"--logdir={logdir}"] if round_ == 0 else [*RESUME, f"--logdir={logdir}"]
        process = subprocess.Popen([sys.executable, "-m", "tfpg.train", *flags, "--steps=10000000",
                                    "--checkpoint_seconds=0.1"], cwd=ROOT, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        processes.append(process)
        deadline = time.time() + 120
        while _saved_steps(logdir) <= saved and time.time() < deadline and process.poll() is None:
            time.sleep(0.05)
        if round_ % 2:
            # TensorFlow writes a checkpoint's shards into "<prefix>_temp/" before merging them into place
            assert _kill_when_a_write_is_in_progress(process, logdir / "checkpoints", time.time() + 60)
        else:
            time.sleep(rng.uniform(0.0, 0.6))
        process.kill()
        _, stderr = process.communicate(timeout=60)
        now = _saved_steps(logdir)
        assert now > saved, stderr[-3000:]
        assert tfpg.load(str(logdir / "checkpoints")).total_steps == now
        saved = now
    finished = run(["-m", "tfpg.train", *RESUME, f"--steps={saved + 64}", f"--logdir={logdir}"])
    assert finished.returncode == 0, finished.stderr[-3000:]
    steps = [int(r["total_steps"]) for r in read_csv(logdir / "progress.csv")]
    assert steps[-1] == saved + 64
    assert steps == sorted(set(steps))  # rows written after each killed run's last checkpoint were dropped


def test_a_second_launch_on_a_live_run_is_refused_and_a_dead_one_does_not_hold_the_lock(tmp_path, processes):
    logdir = tmp_path / "run"
    first = _start(logdir, "--checkpoint_seconds=0.5")
    processes.append(first)
    _wait_for(logdir / "checkpoints" / "checkpoint")
    second = run(["-m", "tfpg.train", "--env=CartPole-v1", "--steps=64", "--resume", f"--logdir={logdir}"])
    assert second.returncode != 0
    assert f"in use by another tfpg.train process (pid {first.pid})" in second.stderr
    first.kill()
    first.communicate(timeout=60)
    third = run(["-m", "tfpg.train", *RESUME, "--steps=64", f"--logdir={logdir}"])
    assert third.returncode == 0, third.stderr[-3000:]
