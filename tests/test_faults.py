"""A failing env or a dead worker ends training with an error naming the copy, after a final checkpoint."""

import os

import numpy as np
import pytest
import tensorflow as tf

import tfpg
from tests.fault_envs import ALWAYS_KILLED, KILLED, RAISING
from tests.helpers import run


@pytest.mark.parametrize("asynchronous", [False, True])
def test_an_env_copy_that_raises_ends_fit_after_a_final_checkpoint(tmp_path, asynchronous):
    agent = tfpg.A2C(seed=0, rollout_steps=4)
    checkpoint = tfpg.callbacks.Checkpoint(str(tmp_path), every=None)
    # copy 1 fails at its 10th step, in the third batch of 4 steps per copy: two batches were trained on
    with pytest.raises(tfpg.EnvError, match="env copy 1 raised ValueError in step: physics exploded"):
        agent.fit(RAISING, steps=100, num_envs=2, asynchronous=asynchronous, callbacks=[checkpoint],
                  verbose=0)
    assert agent.total_steps == agent.iterations * 8 == 16
    assert tfpg.load(str(tmp_path)).total_steps == 16


def test_a_dead_worker_process_ends_fit_naming_the_copy_and_the_signal(tmp_path):
    agent = tfpg.A2C(seed=0, rollout_steps=4)
    checkpoint = tfpg.callbacks.Checkpoint(str(tmp_path), every=None)
    with pytest.raises(tfpg.EnvError, match="worker process of env copy 1 died \\(killed by signal SIGKILL\\)"):
        agent.fit(KILLED, steps=100, num_envs=2, asynchronous=True, callbacks=[checkpoint], verbose=0)
    assert tfpg.load(str(tmp_path)).total_steps == 16


def test_when_every_worker_process_dies_closing_the_env_does_not_hide_the_error_or_skip_the_checkpoint(tmp_path):
    # With no live worker left, Gymnasium's close first waits for the failed step's answers and raises
    # EOFError; that must neither replace the EnvError nor prevent the final checkpoint.
    agent = tfpg.A2C(seed=0, rollout_steps=4)
    checkpoint = tfpg.callbacks.Checkpoint(str(tmp_path), every=None)
    # (the error names the copies found dead when the step failed: the other may die a moment later)
    with pytest.raises(tfpg.EnvError, match=r"worker process of env copy [01] died \(killed by signal SIGKILL\)"):
        agent.fit(ALWAYS_KILLED, steps=100, num_envs=2, asynchronous=True, callbacks=[checkpoint], verbose=0)
    assert tfpg.load(str(tmp_path)).total_steps == agent.total_steps == 16


def test_the_launcher_reports_a_failed_env_and_keeps_a_final_checkpoint(tmp_path):
    logdir = str(tmp_path / "run")
    result = run(["-m", "tfpg.train", "--algo=a2c", f"--env=tests.fault_envs:{RAISING}", "--num_envs=2",
                  "--rollout_steps=4", "--steps=1000", f"--logdir={logdir}", "--verbose=0"])
    assert result.returncode == 1, result.stderr
    assert "env copy 1 raised ValueError in step: physics exploded" in result.stderr
    assert "Newest checkpoint:" in result.stderr and "--resume" in result.stderr
    assert tfpg.load(os.path.join(logdir, "checkpoints")).total_steps == 16
    assert "Traceback" not in result.stderr


def test_a_policy_that_emits_invalid_actions_is_named_as_the_fault_not_the_env():
    import keras
    import tensorflow_probability as tfp

    from tfpg.space_descriptions import ActionAdapter

    class NanPolicy(keras.Model):
        def __init__(self):
            super().__init__()
            self.layer = keras.layers.Dense(1)

        def call(self, observations):
            mean = self.layer(observations)
            # finite while the agent is built (observations of zeros), NaN once the cart moves
            mean = tf.where(tf.reduce_any(tf.not_equal(observations, 0.0), axis=-1, keepdims=True),
                            mean * float("nan"), mean)
            return tfp.distributions.Independent(tfp.distributions.Normal(mean, 1.0), 1)

    agent = tfpg.PPO(seed=0, rollout_steps=8, minibatch_size=8, policy=lambda o, a: NanPolicy())
    with pytest.raises(tfpg.NonFiniteError, match="policy chose an action outside the action space.*not of the env"):
        agent.collect("Pendulum-v1", 8)
    adapter = ActionAdapter({"type": "MultiDiscrete", "shape": [2], "nvec": [3, 4], "start": [0, 0]})
    assert adapter.invalid_rows(np.array([[2, 3], [0, 0]])) is None
    np.testing.assert_array_equal(adapter.invalid_rows(np.array([[2, 3], [3, 0], [0, -1]])), [False, True, True])
