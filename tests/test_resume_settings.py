"""A resume takes its settings from the run, changes only what may change, and skips damaged checkpoints."""

import json
import os

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

import tfpg
from tfpg.checkpoint import read_metadata
from tfpg.errors import DamagedCheckpointError
from tfpg.loading import load_newest_intact

from helpers import read_csv, run

SPACES = (gym.spaces.Box(-np.inf, np.inf, (3,), np.float32), gym.spaces.Box(-1.0, 1.0, (1,), np.float32))
QUIET = ["--verbose=0", "--eval_episodes=1"]


def _train(logdir, *flags):
    return run(["-m", "tfpg.train", f"--logdir={logdir}", *QUIET, *flags])


def _listing(logdir):
    return {name: os.path.getmtime(os.path.join(root, name))
            for root, _, names in os.walk(logdir) for name in names if name != ".lock"}


def test_resume_takes_the_env_and_settings_from_the_run_and_applies_and_records_a_new_learning_rate(tmp_path):
    logdir = tmp_path / "run"
    first = _train(logdir, "--algo=a2c", "--env=Pendulum-v1", "--num_envs=2", "--rollout_steps=16", "--steps=96",
                   "--checkpoint_seconds=0.5", "--keep_checkpoints=1", "--eval_episodes=2")
    assert first.returncode == 0, first.stderr[-3000:]
    # the checkpoint and evaluation settings are not given again: they carry over from the run
    resumed = run(["-m", "tfpg.train", f"--logdir={logdir}", "--verbose=0", "--resume", "--steps=192",
                   "--learning_rate=0.0001"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "learning_rate=0.0001 (was 0.0007)" in resumed.stderr
    rows = read_csv(logdir / "progress.csv")
    # Pendulum with 2 copies, as the run was started: 32 steps per iteration, not CartPole's default 8 copies
    assert [int(r["total_steps"]) for r in rows] == list(range(32, 193, 32))
    rates = [float(r["learning_rate"]) for r in rows]
    np.testing.assert_allclose(rates, [7e-4] * 3 + [1e-4] * 3, rtol=1e-6)
    evaluation = json.loads((logdir / "evaluation.json").read_text())
    assert evaluation["env"] == "Pendulum-v1" and evaluation["episodes"] == 2
    # One checkpoint kept: with the default (3) the first launch's final checkpoint would be kept beside the
    # resumed launch's.
    assert len(list((logdir / "checkpoints").glob("*.index"))) == 1
    record = json.loads((logdir / "run.json").read_text())
    assert record["settings"]["env"] == "Pendulum-v1" and record["settings"]["steps"] == 192
    assert [record["settings"][name] for name in ("checkpoint_seconds", "keep_checkpoints", "eval_episodes")] == \
        [0.5, 1, 2]
    assert record["launches"][-1] == {"total_steps": 96, "changed": {"learning_rate": [7e-4, 1e-4],
                                                                        "steps": [96, 192]}}
    newest = tf.train.latest_checkpoint(str(logdir / "checkpoints"))
    assert read_metadata(newest)["config"]["learning_rate"] == 1e-4  # later resumes keep the new rate

    before = _listing(logdir)
    # a changed hyperparameter other than the rate is refused by `restore` (tested below) and so here
    for flags, message in [(["--env=CartPole-v1"], "trains on Pendulum-v1"),
                           (["--seed=4"], "was seeded with 0"),
                           (["--algo=ppo"], "is a2c")]:
        refused = _train(logdir, "--resume", "--steps=256", *flags)
        assert refused.returncode != 0 and message in refused.stderr, (flags, refused.stderr[-2000:])
    assert _listing(logdir) == before  # nothing was written by the refused launches


def test_an_unset_num_envs_is_the_algorithms_launcher_default_for_the_run_and_its_resumes(tmp_path):
    assert {algo: tfpg.ALGORITHMS[algo].launcher_num_envs for algo in ("ppo", "a2c")} == {"ppo": 1, "a2c": 8}
    # PPO's default is one copy; A2C's n-step batches come from several copies, also when the run resumes
    ppo = _train(tmp_path / "ppo", "--algo=ppo", "--env=CartPole-v1", "--rollout_steps=16", "--minibatch_size=16",
                 "--steps=16")
    assert ppo.returncode == 0, ppo.stderr[-3000:]
    assert json.loads((tmp_path / "ppo" / "run.json").read_text())["settings"]["num_envs"] == 1
    logdir = tmp_path / "a2c"
    first = _train(logdir, "--algo=a2c", "--env=CartPole-v1", "--rollout_steps=16", "--steps=128")
    assert first.returncode == 0, first.stderr[-3000:]
    assert json.loads((logdir / "run.json").read_text())["settings"]["num_envs"] == 8
    resumed = _train(logdir, "--resume", "--steps=256")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert [int(r["total_steps"]) for r in read_csv(logdir / "progress.csv")] == [128, 256]


def test_a_run_without_a_record_needs_its_env_named(tmp_path):
    agent = tfpg.A2C(seed=0, rollout_steps=8)
    agent.fit("Pendulum-v1", steps=16, verbose=0)
    agent.save(str(tmp_path / "checkpoints"))
    refused = _train(tmp_path, "--resume", "--steps=32")
    assert refused.returncode != 0 and "has no run.json" in refused.stderr and "--env" in refused.stderr
    resumed = _train(tmp_path, "--resume", "--steps=32", "--env=Pendulum-v1", "--num_envs=1")
    assert resumed.returncode == 0, resumed.stderr[-3000:]


def _two_checkpoints(directory):
    agent = tfpg.A2C(seed=0, rollout_steps=8)
    agent.build(*SPACES)
    older = agent.save(str(directory))
    agent.total_steps_variable.assign(8)
    agent.policy.trainable_variables[0].assign_add(tf.ones_like(agent.policy.trainable_variables[0]))
    newer = agent.save(str(directory))
    return agent, older, newer


def _truncate_data(prefix):
    data = [name for name in os.listdir(os.path.dirname(prefix))
            if name.startswith(os.path.basename(prefix) + ".data-")][0]
    with open(os.path.join(os.path.dirname(prefix), data), "r+b") as file:
        file.truncate(16)


def test_a_damaged_newest_checkpoint_is_skipped_for_the_newest_intact_one(tmp_path):
    agent, older, newer = _two_checkpoints(tmp_path)
    _truncate_data(newer)
    loaded, prefix, skipped = load_newest_intact(str(tmp_path))
    assert prefix == older and [damaged for damaged, _ in skipped] == [newer]
    assert loaded.total_steps == 0
    _truncate_data(older)
    with pytest.raises(DamagedCheckpointError, match="Every checkpoint .* is damaged"):
        load_newest_intact(str(tmp_path))


@pytest.mark.parametrize("index", ["garbage {{{", ""])
def test_an_unreadable_index_file_hides_no_checkpoint_and_is_set_aside_at_the_next_save(tmp_path, index):
    agent, _, newer = _two_checkpoints(tmp_path)
    (tmp_path / "checkpoint").write_text(index)
    loaded = tfpg.load(str(tmp_path))
    assert loaded.total_steps == 8
    np.testing.assert_array_equal(loaded.policy.trainable_variables[0].numpy(),
                                  agent.policy.trainable_variables[0].numpy())
    loaded.total_steps_variable.assign(16)
    written = loaded.save(str(tmp_path))
    assert tf.train.latest_checkpoint(str(tmp_path)) == written
    assert (tmp_path / "checkpoint.unreadable").read_text() == index
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "checkpoint").write_text(index)
    with pytest.raises(FileNotFoundError, match="index file 'checkpoint' is unreadable"):
        tfpg.load(str(empty))


def test_the_launcher_resumes_from_the_newest_intact_checkpoint_and_says_which(tmp_path):
    logdir = tmp_path / "run"
    first = _train(logdir, "--algo=a2c", "--env=CartPole-v1", "--num_envs=2", "--rollout_steps=16", "--steps=64",
                   "--checkpoint_seconds=0.1")
    assert first.returncode == 0, first.stderr[-3000:]
    checkpoints = logdir / "checkpoints"
    newest = tf.train.latest_checkpoint(str(checkpoints))
    assert newest.endswith("ckpt-64")
    _truncate_data(newest)
    (checkpoints / "checkpoint").write_text("garbled")
    resumed = _train(logdir, "--resume", "--steps=96")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Skipping damaged checkpoint ckpt-64" in resumed.stderr
    assert "Resuming from ckpt-32 at 32 steps" in resumed.stderr
    assert [int(r["total_steps"]) for r in read_csv(logdir / "progress.csv")] == [32, 64, 96]


def test_restore_builds_an_unbuilt_agent_applies_a_new_rate_and_refuses_other_changes(tmp_path):
    saved = tfpg.PPO(seed=1, learning_rate=3e-4)
    saved.build(*SPACES)
    saved.save(str(tmp_path / "a"))

    unbuilt = tfpg.PPO(seed=1, learning_rate=1e-5)
    unbuilt.restore(str(tmp_path / "a"))
    assert unbuilt.built
    for expected, restored in zip(saved.policy.variables, unbuilt.policy.variables):
        np.testing.assert_array_equal(restored.numpy(), expected.numpy())
    assert float(unbuilt.optimizer.learning_rate.numpy()) == np.float32(1e-5)
    unbuilt.save(str(tmp_path / "a"))  # the same run: the rate may change
    assert read_metadata(tf.train.latest_checkpoint(str(tmp_path / "a")))["config"]["learning_rate"] == 1e-5

    other = tfpg.PPO(seed=1, learning_rate=3e-4, clip_range=0.1)
    with pytest.raises(ValueError, match=r"clip_range=0.2 \(asked: 0.1\)"):
        other.restore(str(tmp_path / "a"))
    assert not other.built
    other.build(*SPACES)
    before = [v.numpy() for v in other.policy.variables]
    with pytest.raises(ValueError, match=r"clip_range=0.2 \(asked: 0.1\)"):
        other.restore(str(tmp_path / "a"))
    for value, variable in zip(before, other.policy.variables):
        np.testing.assert_array_equal(value, variable.numpy())

    assert tfpg.load(str(tmp_path / "a"), learning_rate=2e-5).config.learning_rate == 2e-5
    with pytest.raises(ValueError, match="gamma cannot change when a run continues"):
        tfpg.load(str(tmp_path / "a"), gamma=0.5)
