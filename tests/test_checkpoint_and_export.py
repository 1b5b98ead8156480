"""Checkpoints restore everything; exported policies serve without tfpg or TFP."""

import json
import os
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

import tfpg
from helpers import serve_without_tfpg


def _variables(agent):
    state = [v.numpy() for v in agent.policy.variables + agent.value_model.variables]
    state += [v.numpy() for v in agent.optimizer.variables]
    return state


def test_save_and_load_restore_networks_optimizer_statistics_counters_and_rng(tmp_path):
    agent = tfpg.A2C(seed=4, rollout_steps=32, learning_rate=1e-3, scale_rewards=True)
    agent.fit("Pendulum-v1", steps=32 * 3, verbose=0)
    agent.save(str(tmp_path))
    restored = tfpg.load(str(tmp_path))
    assert isinstance(restored, tfpg.A2C)
    assert restored.config == agent.config
    assert (restored.total_steps, restored.iterations) == (agent.total_steps, agent.iterations) == (96, 3)
    for saved, loaded in zip(_variables(agent), _variables(restored)):
        np.testing.assert_array_equal(saved, loaded)
    assert int(restored.optimizer.iterations.numpy()) == 3
    assert agent.observation_normalizer.count.numpy() == restored.observation_normalizer.count.numpy() == 96
    np.testing.assert_array_equal(agent.reward_scaler.statistics.variance.numpy(),
                                  restored.reward_scaler.statistics.variance.numpy())
    observations = np.random.default_rng(0).normal(size=(6, 3))
    # the sampling RNG state is restored too: both draw the same actions next
    np.testing.assert_array_equal(agent.predict(observations, deterministic=False),
                                  restored.predict(observations, deterministic=False))


@pytest.mark.parametrize("algorithm", sorted(tfpg.ALGORITHMS))
def test_checkpoints_hold_every_network_variable(tmp_path, algorithm):
    # Restoring into an agent initialised from another seed must overwrite every weight.
    spaces = (gym.spaces.Box(-np.inf, np.inf, (3,), np.float32), gym.spaces.Box(-1.0, 1.0, (2,), np.float32))
    saved = tfpg.ALGORITHMS[algorithm](seed=1)
    saved.build(*spaces)
    saved.save(str(tmp_path))
    other = tfpg.ALGORITHMS[algorithm](seed=2)
    other.build(*spaces)
    before = [v.numpy() for v in other.policy.variables + other.value_model.variables]
    other.restore(str(tmp_path))
    pairs = zip(saved.policy.variables + saved.value_model.variables,
                other.policy.variables + other.value_model.variables, before)
    for expected, restored, initial in pairs:
        np.testing.assert_array_equal(restored.numpy(), expected.numpy(), err_msg=expected.path)
    assert any(not np.array_equal(a.numpy(), b) for a, b in zip(saved.policy.variables, before))


def test_missing_corrupted_and_mismatched_checkpoints_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="No tfpg checkpoint found"):
        tfpg.load(str(tmp_path))
    agent = tfpg.A2C(seed=0, rollout_steps=8)
    agent.fit("CartPole-v1", steps=8, verbose=0)
    prefix = agent.save(str(tmp_path / "run"))
    other = tfpg.REINFORCE(seed=0)
    other.build(gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(2))
    with pytest.raises(ValueError, match="does not match this agent. It contains .*'algorithm': 'a2c'"):
        other.restore(prefix)
    with pytest.raises(ValueError, match="does not match"):  # never overwrites another agent's run
        other.save(str(tmp_path / "run"))
    data = [f for f in os.listdir(tmp_path / "run") if ".data-" in f][0]
    before = sorted(os.listdir(tmp_path / "run"))
    with open(tmp_path / "run" / data, "r+b") as file:
        file.truncate(16)
    with pytest.raises(ValueError, match="unreadable|could not be restored"):
        tfpg.load(str(tmp_path / "run"))
    assert sorted(os.listdir(tmp_path / "run")) == before


def test_resumed_training_continues_the_step_counter(tmp_path):
    agent = tfpg.A2C(seed=0, rollout_steps=8)
    agent.fit("CartPole-v1", steps=64, verbose=0)
    agent.save(str(tmp_path))
    resumed = tfpg.load(str(tmp_path))
    history = resumed.fit("CartPole-v1", steps=32, verbose=0)
    assert history.history["total_steps"] == [72, 80, 88, 96]
    assert resumed.iterations == 12


@pytest.mark.parametrize("env_id, observations", [
    ("Pendulum-v1", np.array([[1.0, 0.0, 0.5], [0.0, 1.0, -8.0]], np.float32)),
    ("CartPole-v1", np.array([[0.0, 0.1, 0.0, -0.1]], np.float32)),
])
def test_exported_policy_serves_without_tfpg_or_tfp(tmp_path, env_id, observations):
    agent = tfpg.A2C(seed=0, rollout_steps=16)
    agent.fit(env_id, steps=64, verbose=0)
    path = agent.export(str(tmp_path / "policy"))
    expected_actions = agent.predict(observations)
    expected_values = agent.value_model(tf.constant(observations)).numpy()
    flat = agent.policy(tf.constant(observations)).sample(seed=(1, 1)).numpy()
    expected_log_prob = agent.policy(tf.constant(observations)).log_prob(flat).numpy()
    env_actions = flat if env_id == "Pendulum-v1" else flat[:, 0].astype(np.int64)
    out = serve_without_tfpg(path, observations, env_actions, tmp_path)
    np.testing.assert_allclose(out["actions"], expected_actions, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["value"], expected_values, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["log_prob"], expected_log_prob, rtol=1e-5, atol=1e-5)
    assert tuple(out["sample"])[0] == len(observations)
    with open(os.path.join(path, "assets.extra", "tfpg.json")) as file:
        assert json.load(file)["algorithm"] == "a2c"


def test_export_works_with_saved_model_cli_and_replaces_atomically(tmp_path):
    agent = tfpg.A2C(seed=0)
    agent.build(gym.spaces.Box(-1, 1, (2,)), gym.spaces.Discrete(3))
    path = agent.export(str(tmp_path / "policy"))
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    np.save(tmp_path / "obs.npy", np.zeros((2, 2), np.float32))
    result = subprocess.run(
        [cli, "run", "--dir", path, "--tag_set", "serve", "--signature_def", "serving_default",
         "--inputs", f"observations={tmp_path / 'obs.npy'}"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "actions" in result.stdout
    shown = subprocess.run([cli, "show", "--dir", path, "--all"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr[-3000:]
    # every signature declares its inputs' shapes (not unknown_rank): [None, 2] observations, [None] actions
    inputs = [block.split("name:")[0] for block in shown.stdout.split("inputs['")[1:]]
    assert sorted(block.split("'")[0] for block in inputs) == ["actions"] + ["observations"] * 4
    for block in inputs:
        assert "shape: (-1, 2)" in block if block.startswith("observations") else "shape: (-1)" in block, block
    agent.export(path)  # re-export over an existing policy
    assert sorted(os.listdir(tmp_path)) == ["obs.npy", "policy"]
    (tmp_path / "empty").mkdir()
    agent.export(str(tmp_path / "empty"))  # an empty folder holds nothing to lose
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(ValueError, match="holds files tfpg did not write: todo.txt"):
        agent.export(str(tmp_path / "notes"))


def test_save_refuses_a_directory_holding_another_run_of_the_same_algorithm(tmp_path):
    first = tfpg.A2C(seed=0, rollout_steps=8)
    first.fit("CartPole-v1", steps=8, verbose=0)
    first.save(str(tmp_path))
    before = sorted(os.listdir(tmp_path))
    other = tfpg.A2C(seed=1, rollout_steps=8)
    other.fit("CartPole-v1", steps=8, verbose=0)
    with pytest.raises(ValueError, match="holds checkpoints of another run"):
        other.save(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == before


def _exported_steps(path):
    with open(os.path.join(path, "assets.extra", "tfpg.json")) as file:
        return json.load(file)["total_steps"]


def test_export_never_deletes_what_it_did_not_write(tmp_path):
    agent = tfpg.A2C(seed=0, rollout_steps=8)
    agent.fit("CartPole-v1", steps=16, verbose=0)
    folder = str(tmp_path / "policy")
    agent.export(folder)
    with open(os.path.join(folder, "NOTES.txt"), "w") as file:
        file.write("the user's own notes")
    agent.fit("CartPole-v1", steps=16, verbose=0)
    with pytest.raises(ValueError, match=r"holds files tfpg did not write: NOTES\.txt.*overwrite=True"):
        agent.export(folder)
    assert _exported_steps(folder) == 16 and open(os.path.join(folder, "NOTES.txt")).read() == "the user's own notes"
    agent.export(folder, overwrite=True)  # replaces the SavedModel's entries only
    assert _exported_steps(folder) == 32 and open(os.path.join(folder, "NOTES.txt")).read() == "the user's own notes"
    assert tf.saved_model.load(folder).signatures["serving_default"] is not None
    assert sorted(os.listdir(tmp_path)) == ["policy"]  # no staging or retired folders left behind

    foreign = str(tmp_path / "foreign")
    tf.saved_model.save(tf.Module(), foreign)  # somebody else's SavedModel
    with pytest.raises(ValueError, match=r"saved_model\.pb \(of a SavedModel tfpg did not write\)"):
        agent.export(foreign)
    assert not os.path.exists(os.path.join(foreign, "assets.extra"))
    agent.export(foreign, overwrite=True)
    assert _exported_steps(foreign) == 32
    open(str(tmp_path / "a_file"), "w").close()
    with pytest.raises(ValueError, match="is a file"):
        agent.export(str(tmp_path / "a_file"))
