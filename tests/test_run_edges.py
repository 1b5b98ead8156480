"""The edges of a launcher run: a directory that cannot be written, a full disk, Ctrl-C after training."""

import os
import resource
import shutil
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

import tfpg

from helpers import ROOT, run

TINY = ["--algo=a2c", "--env=CartPole-v1", "--num_envs=2", "--rollout_steps=16", "--eval_episodes=1", "--verbose=0",
        "--checkpoint_seconds=0.1"]


def _file_size_limit(size):
    """A child-process set-up in which writing a file beyond `size` bytes fails with EFBIG, as on a full disk."""
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    return limit


def _train(*flags, size=None):
    return subprocess.run([sys.executable, "-m", "tfpg.train", *flags], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, preexec_fn=_file_size_limit(size) if size else None)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("trained") / "run"
    first = _train(*TINY, "--steps=64", f"--logdir={logdir}")
    assert first.returncode == 0, first.stderr[-3000:]
    return logdir


@pytest.fixture
def finished_run(trained_run, tmp_path):
    """A copy of one finished launcher run of 64 steps, for a test to resume (a run holds only relative paths)."""
    return shutil.copytree(trained_run, tmp_path / "run")


def test_a_logdir_that_cannot_be_created_is_a_usage_error(tmp_path):
    (tmp_path / "a_file").write_text("")
    result = run(["-m", "tfpg.train", *TINY, "--steps=32", f"--logdir={tmp_path / 'a_file' / 'run'}"])
    assert result.returncode == 2
    assert "Cannot write the run into --logdir=" in result.stderr and "Traceback" not in result.stderr


def test_a_full_disk_during_a_checkpoint_stops_clearly_and_keeps_the_newest_checkpoint(finished_run):
    checkpoints = finished_run / "checkpoints"
    before = tf.train.latest_checkpoint(str(checkpoints))
    # a checkpoint of this agent is ~120 kB: every checkpoint write fails, the small logs do not
    result = _train("--resume", "--steps=128", "--checkpoint_seconds=0.1", f"--logdir={finished_run}", size=60_000)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Could not write a checkpoint at 96 steps" in result.stderr and "File too large" in result.stderr
    assert "the newest is ckpt-64" in result.stderr and "Traceback" not in result.stderr
    assert tf.train.latest_checkpoint(str(checkpoints)) == before
    assert not [name for name in os.listdir(checkpoints) if "_temp" in name]
    assert tfpg.load(str(checkpoints)).total_steps == 64


def test_a_full_disk_during_the_export_keeps_the_earlier_export(finished_run):
    policy = finished_run / "policy" / "saved_model.pb"
    exported = (policy.read_bytes(), policy.stat().st_mtime_ns)
    # checkpoints (~120 kB) fit, the SavedModel (~230 kB) does not
    result = _train("--resume", "--steps=128", f"--logdir={finished_run}", size=160_000)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "The final evaluation and export failed" in result.stderr and "Traceback" not in result.stderr
    assert (policy.read_bytes(), policy.stat().st_mtime_ns) == exported
    assert not [name for name in os.listdir(finished_run) if ".partial" in name or ".old" in name]
    assert tfpg.load(str(finished_run / "checkpoints")).total_steps == 128


def test_stale_checkpoint_temporaries_are_removed_at_the_next_start(finished_run):
    stale = finished_run / "checkpoints" / "ckpt-80_temp"
    stale.mkdir()
    (stale / "part-00000-of-00001.data-00000-of-00001.tempstate1").write_bytes(b"\0" * 100)
    result = _train("--resume", "--steps=96", f"--logdir={finished_run}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert not stale.exists()


def test_ctrl_c_during_the_final_evaluation_exits_130_with_the_checkpoint_kept(tmp_path):
    logdir = tmp_path / "run"
    # Pendulum's episodes are 200 steps: a thousand of them keep the final evaluation busy
    process = subprocess.Popen([sys.executable, "-m", "tfpg.train", "--algo=a2c", "--env=Pendulum-v1", "--num_envs=2",
                                "--rollout_steps=16", "--steps=64", "--verbose=0", "--eval_episodes=1000",
                                f"--logdir={logdir}"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        deadline = time.time() + 120
        while not (logdir / "checkpoints" / "ckpt-64.index").exists() and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(2.0)  # the final checkpoint is written at the end of training, then evaluation starts
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr[-3000:]
    assert "Interrupted during the final evaluation and export" in stderr and "Traceback" not in stderr
    assert not (logdir / "policy").exists()
    assert tfpg.load(str(logdir / "checkpoints")).total_steps == 64


def test_a_run_folder_without_a_checkpoint_is_restarted_by_the_same_command_and_not_resumed(finished_run):
    from helpers import read_csv

    command = ["-m", "tfpg.train", *TINY, "--steps=64", f"--logdir={finished_run}"]  # the command that trained it
    # What a run stopped before its first checkpoint leaves (killed early, a cluster that could not be used):
    # its record and logs, no checkpoint.
    shutil.rmtree(finished_run / "checkpoints")
    resumed = run([*command, "--resume"])
    assert resumed.returncode == 2 and "stopped before its first checkpoint" in resumed.stderr, resumed.stderr
    again = run(command)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "starting it anew" in again.stderr
    assert [int(row["total_steps"]) for row in read_csv(finished_run / "progress.csv")] == [32, 64]
    assert tfpg.load(str(finished_run / "checkpoints")).total_steps == 64


def test_an_evaluation_past_its_time_limit_keeps_the_finished_episodes_and_the_launcher_still_exports(tmp_path):
    import json

    import gymnasium as gym

    from tfpg.episodes import play_episodes
    from tfpg.errors import EvaluationTimeout

    def slow(observation, episode_start):
        time.sleep(0.02)
        return 0

    with pytest.raises(EvaluationTimeout, match="ran past its limit of 0.5 s") as raised:
        play_episodes(gym.make("CartPole-v1", max_episode_steps=5), slow, episodes=100, first_seed=0,
                      max_seconds=0.5)
    finished = raised.value
    assert 1 <= len(finished.returns) < 100 and finished.episode == len(finished.returns)
    assert finished.lengths == [5] * len(finished.returns) and finished.returns == [5.0] * len(finished.returns)

    logdir = tmp_path / "run"
    result = run(["-m", "tfpg.train", "--algo=a2c", "--env=Pendulum-v1", "--num_envs=2", "--rollout_steps=8",
                  "--steps=16", "--eval_episodes=1000", "--eval_seconds=1", "--verbose=0", f"--logdir={logdir}"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ran past its limit of 1 s" in result.stderr and "exporting the policy" in result.stderr
    evaluation = json.loads((logdir / "evaluation.json").read_text())
    assert evaluation["timed_out"] and evaluation["episodes"] < 1000
    assert (logdir / "policy" / "saved_model.pb").exists()
