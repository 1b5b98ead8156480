"""The agent loop: collection, bootstrapping, fit/History, prediction, retracing."""

import gymnasium as gym
import keras
import numpy as np
import pytest
import tensorflow as tf

import tfpg


def test_collect_is_time_major_and_bootstraps_truncations_from_the_true_final_observation(counter_env):
    agent = tfpg.A2C(seed=0, normalize_observations=False, gamma=0.9, gae_lambda=0.5)
    rollout = agent.collect(counter_env(max_episode_steps=3), 7)
    assert rollout.observations.shape == (7, 1, 1)
    assert rollout.actions.shape == (7, 1, 1)
    # observations count 0,1,2 then reset: episodes end at steps 2 and 5 (truncated)
    np.testing.assert_array_equal(rollout.observations[:, 0, 0], [0, 1, 2, 0, 1, 2, 0])
    np.testing.assert_array_equal(rollout.truncated[:, 0], [0, 0, 1, 0, 0, 1, 0])
    assert not rollout.terminated.any()
    assert rollout.episode_returns == [3.0, 3.0] and rollout.episode_lengths == [3, 3]
    value = lambda x: float(agent.value_model(tf.constant([[x]], tf.float32))[0])  # noqa: E731
    # the successor of a truncated step is the final observation [3], not the reset [0]
    assert rollout.next_values[2, 0] == pytest.approx(value(3.0), rel=1e-5)
    assert rollout.next_values[5, 0] == pytest.approx(value(3.0), rel=1e-5)
    assert rollout.next_values[1, 0] == pytest.approx(value(2.0), rel=1e-5)
    # the batch end bootstraps from the next observation [1]
    assert rollout.next_values[6, 0] == pytest.approx(value(1.0), rel=1e-5)
    delta = 1.0 + 0.9 * rollout.next_values[2, 0] - rollout.values[2, 0]
    assert rollout.advantages[2, 0] == pytest.approx(delta, rel=1e-5)
    assert agent.total_steps == 7


def test_termination_is_not_bootstrapped(counter_env):
    agent = tfpg.A2C(seed=0, normalize_observations=False, gae_lambda=0.0, gamma=0.9)
    rollout = agent.collect(counter_env(max_episode_steps=10, terminate_at=2), 4)
    np.testing.assert_array_equal(rollout.terminated[:, 0], [0, 1, 0, 1])
    # one-step TD error at a termination is r - V(s)
    assert rollout.advantages[1, 0] == pytest.approx(1.0 - rollout.values[1, 0], rel=1e-5)


def test_log_probs_in_the_rollout_are_those_of_the_policy_being_updated():
    agent = tfpg.A2C(seed=3)
    rollout = agent.collect("Pendulum-v1", 64)
    distribution = agent.policy(tf.constant(rollout.flat("observations")))
    np.testing.assert_allclose(distribution.log_prob(rollout.flat("actions")).numpy(),
                               rollout.flat("log_probs"), rtol=1e-5, atol=1e-5)
    # Gaussian samples are stored unclipped; only the env sees them clipped to [-2, 2]
    assert rollout.actions.shape == (64, 1, 1)


def test_fit_returns_history_per_iteration_and_does_not_retrace():
    agent = tfpg.A2C(seed=0, rollout_steps=16)
    history = agent.fit("CartPole-v1", steps=16 * 2 * 5, num_envs=2, verbose=0)
    assert isinstance(history, keras.callbacks.History)
    for key in ("episode_return", "episode_length", "policy_loss", "value_loss", "entropy", "approx_kl",
                "explained_variance", "steps_per_second", "total_steps"):
        assert len(history.history[key]) == 5, key
    assert history.history["total_steps"] == [32, 64, 96, 128, 160]
    traces = agent._train_step.experimental_get_tracing_count()
    agent.fit("CartPole-v1", steps=32 * 3, verbose=0)
    agent.collect("CartPole-v1", 10)  # a different batch size must not retrace either
    for size in (1, 5):
        agent.predict(np.zeros((size, 4), np.float32), deterministic=False)
    assert agent._train_step.experimental_get_tracing_count() == traces == 1
    assert agent._sample_fn.experimental_get_tracing_count() == 1


def test_a2c_update_descends_its_loss():
    agent = tfpg.A2C(seed=1, rollout_steps=64, learning_rate=1e-3)
    rollout = agent.collect("CartPole-v1", 64)
    batch = {k: tf.constant(rollout.flat(k)) for k in ("observations", "actions", "log_probs", "values",
                                                       "advantages", "returns", "mask")}
    before, _ = agent._losses(batch)
    agent.train_on_batch(rollout)
    after, _ = agent._losses(batch)
    assert float(after) < float(before)


def test_a2c_rmsprop_takes_the_first_rmsprop_step_on_the_clipped_gradient():
    rate, clip = 1e-3, 0.5
    agent = tfpg.A2C(seed=2, rollout_steps=32, learning_rate=rate, optimizer="rmsprop", max_grad_norm=clip)
    rollout = agent.collect("Pendulum-v1", 32)
    batch = {k: tf.constant(rollout.flat(k)) for k in ("observations", "actions", "log_probs", "values",
                                                       "advantages", "returns", "mask")}
    with tf.GradientTape() as tape:
        loss, _ = agent._losses(batch)
    gradients = tape.gradient(loss, agent._variables)
    norm = np.sqrt(sum(float(tf.reduce_sum(g ** 2)) for g in gradients))
    before = [v.numpy() for v in agent._variables]
    agent.train_on_batch(rollout)
    for variable, start, gradient in zip(agent._variables, before, gradients):
        g = gradient.numpy() * min(1.0, clip / norm)
        # from a zero mean square: v = (1 - ρ) g², step = lr g / √(v + ε²)
        expected = start - rate * g / np.sqrt(0.01 * g ** 2 + 1e-10)
        np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-4, atol=1e-7, err_msg=variable.name)


def test_callbacks_see_keras_hooks_and_can_stop_training():
    seen = []

    class Recorder(tfpg.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append("begin")

        def on_epoch_end(self, epoch, logs=None):
            seen.append(epoch)
            if epoch == 2:
                self.agent.stop_training = True

        def on_train_end(self, logs=None):
            seen.append("end")

    agent = tfpg.A2C(seed=0, rollout_steps=8)
    history = agent.fit("CartPole-v1", steps=8 * 100, callbacks=[Recorder()], verbose=0)
    assert seen == ["begin", 0, 1, 2, "end"]
    assert len(history.history["total_steps"]) == 3


def test_predict_and_evaluate():
    agent = tfpg.A2C(seed=0)
    agent.build(gym.spaces.Box(-1, 1, (3,)), gym.spaces.Box(-2, 2, (1,)))
    single = agent.predict(np.zeros(3))
    assert single.shape == (1,)
    batch = agent.predict(np.zeros((4, 3)), deterministic=False)
    assert batch.shape == (4, 1) and np.all(np.abs(batch) <= 2)
    with pytest.raises(ValueError, match=r"shape \(2,\); expected \(3,\)"):
        agent.predict(np.zeros(2))
    with pytest.raises(ValueError, match="NaN"):
        agent.predict(np.full(3, np.nan))
    result = agent.evaluate("Pendulum-v1", episodes=2)
    assert result["episodes"] == 2 and result["mean_length"] == 200
    assert result["mean_return"] == pytest.approx(np.mean(result["returns"]))


@pytest.mark.parametrize("bad", [dict(gamma=1.5), dict(learning_rate=-1.0), dict(hidden_sizes=(64, 0)),
                                 dict(activation="sigmoidish"), dict(no_such_thing=1)])
def test_bad_hyperparameters_are_named(bad):
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        tfpg.A2C(**bad)


def test_bad_step_counts_are_refused():
    agent = tfpg.A2C()
    for steps in (0, -5, 2.5):
        with pytest.raises(ValueError, match="steps must be a positive integer"):
            agent.fit("CartPole-v1", steps=steps, verbose=0)


def test_asynchronous_env_copies_collect_the_same_batches_as_synchronous_ones():
    rollouts = []
    for asynchronous in (False, True):
        agent = tfpg.A2C(seed=3, rollout_steps=16)
        agent.fit("CartPole-v1", steps=16 * 2, num_envs=2, asynchronous=asynchronous, verbose=0)
        rollouts.append(agent.collect("CartPole-v1", 32))
        agent.close()
    np.testing.assert_array_equal(rollouts[0].observations, rollouts[1].observations)
    np.testing.assert_array_equal(rollouts[0].actions, rollouts[1].actions)


class _NaNRewardEnv(gym.Wrapper):
    def __init__(self, env, at):
        super().__init__(env)
        self.at, self.count = at, 0

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.count += 1
        return observation, (float("nan") if self.count == self.at else reward), terminated, truncated, info


def test_non_finite_env_data_stops_collection_naming_what_and_where():
    agent = tfpg.A2C(seed=0)
    with pytest.raises(tfpg.NonFiniteError, match="non-finite reward in env copy 0 at env step 4"):
        agent.collect(_NaNRewardEnv(gym.make("CartPole-v1"), at=5), 8)
    assert agent.total_steps == 0


def test_a_non_finite_update_is_undone_and_reported():
    agent = tfpg.PPO(seed=0, rollout_steps=64, minibatch_size=32)
    rollout = agent.collect("CartPole-v1", 64)
    agent.train_on_batch(rollout)
    state = [v.numpy().copy() for v in agent._training_state()]
    rollout.advantages[3, 0] = np.inf
    agent.config.normalize_advantages = False
    with pytest.raises(tfpg.NonFiniteError, match="non-finite values in: .*policy_loss"):
        agent.train_on_batch(rollout)
    after = [v.numpy() for v in agent._training_state()]
    assert len(state) > 10  # networks, Adam moments and the iteration counter of the optimizer...
    for old, new in zip(state, after):
        assert np.array_equal(old, new)


def test_fit_with_other_env_copies_rebuilds_the_vector_env_and_collect_reuses_it():
    agent = tfpg.A2C(seed=0, rollout_steps=4)
    agent.collect("CartPole-v1", 4)
    assert agent._sources.current.num_envs == 1
    agent.fit("CartPole-v1", steps=16, num_envs=4, verbose=0)
    assert agent._sources.current.num_envs == 4
    assert agent.collect("CartPole-v1", 8).observations.shape[:2] == (2, 4)


@pytest.mark.parametrize("algorithm", [tfpg.NPG, tfpg.TRPO, tfpg.ACKTR])
def test_trust_region_methods_refuse_shared_networks(algorithm):
    agent = algorithm(shared_network=True)
    with pytest.raises(ValueError, match="shared_network=False"):
        agent.build(gym.spaces.Box(-1, 1, (3,)), gym.spaces.Discrete(2))


class _NonFiniteAt(gym.Wrapper):
    """Returns NaN in the reward or the observation at the `at`-th step of its lifetime."""

    def __init__(self, env, at, where):
        super().__init__(env)
        self.at, self.where, self.count = at, where, 0

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.count += 1
        if self.count == self.at:
            if self.where == "reward":
                reward = float("nan")
            else:
                observation = np.full_like(observation, np.nan)
        return observation, reward, terminated, truncated, info


@pytest.mark.parametrize("where", ["reward", "observation"])
def test_skipped_non_finite_steps_are_left_out_counted_and_cut_cleanly(counter_env, where):
    agent = tfpg.A2C(seed=0, rollout_steps=8, gamma=0.9, gae_lambda=0.8, normalize_advantages=False,
                     non_finite_env_data="skip")
    rollout = agent.collect(_NonFiniteAt(counter_env(max_episode_steps=100), at=5, where=where), 8)
    # step t=4 (the 5th) is bad: left out, its copy reset, so the counter restarts at 0 at t=5
    np.testing.assert_array_equal(rollout.observations[:, 0, 0], [0, 1, 2, 3, 4, 0, 1, 2])
    np.testing.assert_array_equal(rollout.mask[:, 0], [1, 1, 1, 1, 0, 1, 1, 1])
    np.testing.assert_array_equal(rollout.rewards[:, 0], [1, 1, 1, 1, 0, 1, 1, 1])
    assert rollout.skipped == 1 and rollout.episode_returns == []
    assert list(np.flatnonzero(rollout.truncated[:, 0])) == [3, 4] and not rollout.terminated.any()
    # the transition before the bad step is a truncation bootstrapped from the valid state 4
    value_of_4 = agent._values_numpy(np.array([[4.0]], np.float32))[0]
    np.testing.assert_allclose(rollout.next_values[3, 0], value_of_4, rtol=1e-6)
    expected = rollout.rewards[3, 0] + 0.9 * value_of_4 - rollout.values[3, 0]
    np.testing.assert_allclose(rollout.advantages[3, 0], expected, rtol=1e-5, atol=1e-6)
    assert np.isfinite(rollout.advantages).all() and np.isfinite(rollout.returns).all()
    logs = agent.train_on_batch(rollout)
    assert np.isfinite(logs["policy_loss"])


def test_fit_logs_the_count_of_skipped_steps(counter_env):
    agent = tfpg.A2C(seed=0, rollout_steps=8, non_finite_env_data="skip")
    history = agent.fit(_NonFiniteAt(counter_env(max_episode_steps=100), at=13, where="reward"), steps=24,
                        verbose=0)
    assert history.history["skipped_env_steps"] == [0, 1, 0]


def test_sampled_predictions_between_fit_calls_leave_training_unchanged():
    def trained(predict_between):
        agent = tfpg.PPO(seed=3, rollout_steps=16, minibatch_size=16, epochs=2)
        agent.fit("CartPole-v1", steps=16, verbose=0)
        if predict_between:
            for _ in range(3):
                agent.predict(np.zeros((4, 4), np.float32), deterministic=False)
        agent.fit("CartPole-v1", steps=32, verbose=0)  # PPO's shuffles and the batch seeds come from agent.rng
        weights = [w.copy() for w in agent.policy.get_weights()]
        agent.close()
        return weights

    for plain, with_predictions in zip(trained(False), trained(True)):
        np.testing.assert_array_equal(plain, with_predictions)
