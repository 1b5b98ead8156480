"""PPO's recompute_advantages: the graph GAE derived by hand, and an update whose later epochs use the new critic."""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

import tfpg
from tfpg.graph_advantages import generalized_advantages, standardized
from tfpg.returns import generalized_advantages as numpy_generalized_advantages
from tfpg.update import standardized_advantages

GAMMA, LAM = 0.9, 0.8


def test_graph_gae_stops_at_episode_ends_and_bootstraps_only_truncations():
    # Column 0: an episode cut by a time limit at step 1 (successor value 5), then one that runs past the batch.
    # Column 1: an episode that terminates at step 2 (its successor's value 9 must not count), then a new one.
    rewards = np.array([[1.0, 1.0], [2.0, 0.5], [3.0, 2.0], [4.0, 1.5]], np.float32)
    values = np.array([[0.5, 1.0], [1.0, 2.0], [1.5, 3.0], [2.0, 0.2]], np.float32)
    next_values = np.array([[1.0, 2.0], [5.0, 3.0], [2.0, 9.0], [6.0, 0.7]], np.float32)
    terminated = np.array([[0, 0], [0, 0], [0, 1], [0, 0]], np.float32)
    truncated = np.array([[0, 0], [1, 0], [0, 0], [0, 0]], np.float32)
    d = rewards + GAMMA * (1 - terminated) * next_values - values
    column0 = [d[0, 0] + GAMMA * LAM * d[1, 0], d[1, 0], d[2, 0] + GAMMA * LAM * d[3, 0], d[3, 0]]
    a2 = d[2, 1]                                 # the termination: no bootstrap, and the recursion stops
    a1 = d[1, 1] + GAMMA * LAM * a2
    column1 = [d[0, 1] + GAMMA * LAM * a1, a1, a2, d[3, 1]]
    advantages, returns = generalized_advantages(*map(tf.constant, (rewards, values, next_values, terminated,
                                                                     truncated)), GAMMA, LAM)
    np.testing.assert_allclose(advantages.numpy(), np.array([column0, column1]).T, rtol=1e-6)
    np.testing.assert_allclose(returns.numpy(), advantages.numpy() + values, rtol=1e-6)
    expected, _ = numpy_generalized_advantages(rewards, values, next_values, terminated > 0, truncated > 0, GAMMA, LAM)
    np.testing.assert_allclose(advantages.numpy(), expected, rtol=1e-6)


def test_standardized_uses_only_the_masked_entries():
    values = tf.constant([1.0, 2.0, 3.0, 100.0])
    mask = tf.constant([1.0, 1.0, 1.0, 0.0])
    std = np.sqrt(2.0 / 3.0)                     # of 1, 2, 3 around their mean 2
    np.testing.assert_allclose(standardized(values, mask).numpy(), (np.array([1, 2, 3, 100]) - 2.0) / std, rtol=1e-5)


def _vector_env(counter_env):
    """Copy 0 terminates every 4 steps, copy 1 is truncated every 3: both kinds of episode end in one batch."""
    return gym.vector.SyncVectorEnv([lambda: counter_env(max_episode_steps=10, terminate_at=4),
                                     lambda: counter_env(max_episode_steps=3)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def _agent(**hyperparameters):
    return tfpg.PPO(seed=3, rollout_steps=16, minibatch_size=8, learning_rate=1e-2, **hyperparameters)


def test_before_any_update_the_recomputed_advantages_are_the_collected_ones(counter_env):
    agent = _agent(recompute_advantages=True)
    rollout = agent.collect(_vector_env(counter_env), 32)
    assert rollout.terminated[:, 0].any() and rollout.truncated[:, 1].any()
    flat = {name: tf.constant(rollout.flat(name)) for name in ("observations", "mask")}
    time_major = {"final_observations": tf.constant(rollout.flat("final_observations")),
                  **{name: tf.constant(getattr(rollout, name), tf.float32)
                     for name in ("rewards", "terminated", "truncated")}}
    fresh = agent._with_current_advantages(flat, time_major)
    np.testing.assert_allclose(fresh["advantages"].numpy(),
                               standardized_advantages(rollout.flat("advantages"), rollout.flat("mask")), atol=1e-5)
    np.testing.assert_allclose(fresh["returns"].numpy(), rollout.flat("returns"), rtol=1e-5, atol=1e-5)


def _advantages_of_the_current_critic(agent, rollout):
    """GAE in NumPy with the agent's critic now: V of every observation and of every transition's successor."""
    shape = rollout.rewards.shape
    values = agent._values_numpy(rollout.flat("observations")).reshape(shape)
    next_values = agent._values_numpy(rollout.flat("final_observations")).reshape(shape)
    return numpy_generalized_advantages(rollout.rewards, values, next_values, rollout.terminated, rollout.truncated,
                                        agent.config.gamma, agent.config.gae_lambda)


def test_the_second_epoch_trains_on_advantages_of_the_critic_the_first_epoch_left(counter_env):
    recomputing = _agent(recompute_advantages=True, epochs=2)
    rollout = recomputing.collect(_vector_env(counter_env), 32)
    recomputing.train_on_batch(rollout)

    # The same two epochs as two one-epoch updates, the second on advantages re-estimated in between; each
    # agent trains on its own batch, which (same seed, same weights) is the first agent's to the bit.
    stepwise = _agent(epochs=1)
    own = stepwise.collect(_vector_env(counter_env), 32)
    for field in ("rewards", "actions", "log_probs", "values", "advantages"):
        np.testing.assert_array_equal(getattr(own, field), getattr(rollout, field))
    stepwise.train_on_batch(own)
    advantages, returns = _advantages_of_the_current_critic(stepwise, own)
    assert not np.allclose(returns, own.returns, atol=1e-3)  # the first epoch moved the critic
    stepwise.train_on_batch(dataclasses.replace(own, advantages=advantages, returns=returns))

    plain = _agent(epochs=2)
    plain.train_on_batch(plain.collect(_vector_env(counter_env), 32))
    for a, b, c in zip(recomputing._variables, stepwise._variables, plain._variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)
    assert max(float(np.max(np.abs(a.numpy() - c.numpy())))
               for a, c in zip(recomputing._variables, plain._variables)) > 1e-4


def test_recomputing_is_part_of_the_one_compiled_update_and_survives_a_resume(counter_env, tmp_path):
    agent = _agent(recompute_advantages=True)
    env = _vector_env(counter_env)
    for _ in range(2):
        agent.train_on_batch(agent.collect(env, 32))
    assert agent._train_step.experimental_get_tracing_count() == 1
    agent.save(str(tmp_path))
    restored = tfpg.load(str(tmp_path))
    assert restored.config.recompute_advantages
    with pytest.raises(ValueError, match="recompute_advantages"):
        tfpg.load(str(tmp_path), recompute_advantages=False)


def test_the_memory_estimate_counts_the_successor_observations_the_update_holds(monkeypatch):
    import tfpg.memory_check
    space = gym.spaces.Box(0, 255, (84, 84, 4), np.uint8)
    per_step_without = 2 * 84 * 84 * 4 + 4 * 1 + 40    # two observations, one int32 action, ten float32 fields
    for recompute, fits in ((False, True), (True, False)):   # 100 steps: 2 copies fit, 3 do not
        agent = tfpg.PPO(seed=0, rollout_steps=100, recompute_advantages=recompute)
        agent.build(space, gym.spaces.Discrete(3))
        networks = _networks_bytes(agent, rows=100)
        monkeypatch.setattr(tfpg.memory_check, "available_memory",
                            lambda: 100 * (per_step_without + 84 * 84 * 2) + networks)
        if fits:
            agent.check_batch_memory(1)
        else:
            with pytest.raises(ValueError, match=f"{per_step_without + 84 * 84 * 4} bytes per step"):
                agent.check_batch_memory(1)


def _networks_bytes(agent, rows):
    """The networks' part of the memory estimate (tfpg.memory_check.check_batch_memory) for `rows` steps."""
    from tfpg.memory_check import activation_bytes

    total, largest = activation_bytes(agent._evaluate_fn.get_concrete_function())
    weights = sum(int(np.prod(v.shape)) * 4 for v in agent._trainable_variables())
    return max(rows * 2 * largest, min(agent.config.minibatch_size, rows) * 2 * total) + 3 * weights
