"""Recurrent policies: the recurrent layer, sequences, state carried and reset in acting, evaluation and predict,
and memory learned by PPO and TRPO."""

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

import tfpg
from tfpg.recurrent import STATES, RecurrentCore, sequence_input
from tfpg.sequences import cut_sequences, flat_sequences, gather_sequences, sequence_starts

from conftest import CounterEnv
from memory_envs import CueEnv, FirstStepEnv


def _vector(factory, copies):
    return gym.vector.SyncVectorEnv([factory] * copies, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_one_pass_over_a_sequence_equals_its_steps_one_at_a_time_with_resets_zeroing_the_state(kind):
    core = RecurrentCore(kind, 5)
    steps, copies = 6, 3
    features = tf.random.stateless_normal([steps * copies, 4], seed=[1, 2])
    starts = np.zeros((steps, copies), np.float32)
    starts[2, 1] = starts[4, 0] = 1.0
    initial = tf.random.stateless_normal([copies, core.state_size], seed=[3, 4])
    outputs, received, final = core(features, tf.constant(starts.reshape(-1)), initial)
    state = initial.numpy()
    for t in range(steps):
        rows = slice(t * copies, (t + 1) * copies)
        np.testing.assert_allclose(received[rows], state, atol=1e-6)  # the state before the reset
        kept = state * (1.0 - starts[t])[:, None]
        step_outputs, _, state = core(features[rows], tf.zeros([copies]), tf.constant(kept))
        np.testing.assert_allclose(outputs[rows], step_outputs, atol=1e-5)
        state = state.numpy()
    np.testing.assert_allclose(final, state, atol=1e-5)
    # a step that starts an episode gives what a fresh zero state gives, whatever came before
    fresh, _, _ = core(features[2 * copies + 1:2 * copies + 2], tf.zeros([1]), core.initial_state(1))
    np.testing.assert_allclose(outputs[2 * copies + 1], fresh[0], atol=1e-6)


def test_sequences_are_cut_per_copy_and_picked_whole_with_their_starting_state():
    steps, copies, length = 6, 2, 3
    grid = np.arange(steps * copies).reshape(steps, copies)  # the value of step t of copy i is t·N + i
    cut = cut_sequences(grid, length)
    assert cut.shape == (length, (steps // length) * copies)
    for j in range(steps // length):
        for i in range(copies):
            np.testing.assert_array_equal(cut[:, j * copies + i], grid[j * length:(j + 1) * length, i])
    states = np.stack([grid, -grid], axis=-1).astype(np.float32)  # [T, N, 2]
    starts = sequence_starts(states, length)
    np.testing.assert_array_equal(starts[:, 0], cut[0])  # each sequence starts from its first step's state
    count = cut.shape[1]
    batch = {"observations": sequence_input(tf.constant(flat_sequences(grid, length)), tf.zeros([length * count]),
                                            {"policy": tf.constant(starts)}),
             "returns": tf.constant(flat_sequences(grid, length))}
    picked = gather_sequences(batch, tf.constant([3, 1]), tf.constant(count))
    np.testing.assert_array_equal(tf.reshape(picked["returns"], [length, 2]), cut[:, [3, 1]])
    np.testing.assert_array_equal(picked["observations"][STATES]["policy"], starts[[3, 1]])


def test_collection_marks_episode_starts_and_acting_carries_the_state_the_batch_is_evaluated_with():
    agent = tfpg.PPO(seed=3, recurrent="lstm", recurrent_units=8, rollout_steps=8, normalize_observations=False)
    env = _vector(lambda: gym.wrappers.TimeLimit(CounterEnv(), 3), 2)
    for _ in range(2):  # the second batch continues the first one's episodes and states
        rollout = agent.collect(env, 16)
        # the batch is evaluated from the states the last one ended in, resetting where episodes start,
        # as acting did: the state acting holds now is the one evaluation ends in
        np.testing.assert_allclose(agent._acting.states, agent._batches.states["policy"], atol=1e-5)
    expected = np.zeros((8, 2), bool)
    expected[[1, 4, 7]] = True  # 16 steps before: episodes of 3 steps started at steps 0, 3, 6, ... of the run
    np.testing.assert_array_equal(rollout.episode_starts, expected)
    # each step's value comes from the state it received, zeroed where its episode starts
    for t, i in [(1, 0), (2, 1)]:
        state = rollout.states["value"][t, i][None] * (1.0 - expected[t, i])
        inputs = sequence_input(tf.constant(rollout.observations[t, i][None]), tf.zeros([1]),
                                {"policy": tf.zeros([1, 16]), "value": tf.constant(state)})
        np.testing.assert_allclose(agent.value_model(inputs), rollout.values[t, i][None], atol=1e-5)
    agent.train_on_batch(rollout)


def test_predict_carries_the_state_and_resets_it_where_an_episode_starts():
    agent = tfpg.A2C(seed=0, recurrent="gru", recurrent_units=6)
    agent.build(CueEnv.observation_space, CueEnv.action_space)
    observations = np.array([[1.0], [0.0], [0.0], [-1.0], [0.0]], np.float32)
    starts = np.array([1, 0, 0, 1, 0], np.float32)
    inputs = sequence_input(tf.constant(observations), tf.constant(starts), {"policy": tf.zeros([1, 6]),
                                                                                 "value": tf.zeros([1, 6])})
    modes = agent.policy(inputs).mode().numpy()[:, 0]
    state = None
    for observation, start, mode in zip(observations, starts, modes):
        action, state = agent.predict(observation, state=state, episode_start=bool(start))
        assert action == mode and state.shape == (1, 6)
    batch_actions, batch_state = agent.predict(observations[:2])  # a batch of rows, each starting an episode
    assert batch_state.shape == (2, 6) and batch_actions.tolist() == [modes[0], agent.predict(observations[1])[0]]
    with pytest.raises(ValueError, match=r"state has shape \(2, 6\).*\(1, 6\)"):
        agent.predict(observations[0], state=batch_state)
    with pytest.raises(ValueError, match="episode_start must be a bool"):
        agent.predict(observations[:2], state=batch_state, episode_start=[True])
    feed_forward = tfpg.A2C()
    feed_forward.build(CueEnv.observation_space, CueEnv.action_space)
    with pytest.raises(ValueError, match="feed-forward"):
        feed_forward.predict(observations[0], state=state)


def test_a_recurrent_checkpoint_loads_with_its_layer_and_is_refused_by_a_feed_forward_agent(tmp_path):
    agent = tfpg.PPO(seed=1, recurrent="lstm", recurrent_units=4, rollout_steps=16)
    agent.fit(_vector(CueEnv, 2), 32, verbose=0)
    agent.save(str(tmp_path / "run"))
    loaded = tfpg.load(str(tmp_path / "run"))
    observations = np.array([[1.0], [0.0]], np.float32)
    for (action, state), (loaded_action, loaded_state) in zip(
            [agent.predict(observations)], [loaded.predict(observations)]):
        np.testing.assert_array_equal(action, loaded_action)
        np.testing.assert_allclose(state, loaded_state)
    with pytest.raises(ValueError, match="recurrent"):
        tfpg.PPO(seed=1, rollout_steps=16).restore(str(tmp_path / "run"))


def test_recurrent_settings_that_cannot_work_are_refused_naming_the_fix():
    with pytest.raises(ValueError, match="ACKTR .* LSTM cell"):
        tfpg.ACKTR(recurrent="lstm")
    with pytest.raises(ValueError, match="recompute_advantages=False"):
        tfpg.PPO(recurrent="gru", recompute_advantages=True)
    with pytest.raises(ValueError, match="sequence_length=128 does not divide rollout_steps=200"):
        tfpg.PPO(recurrent="lstm", rollout_steps=200)
    with pytest.raises(ValueError, match="leave recurrent='none'"):
        tfpg.PPO(recurrent="lstm", policy="user_networks:policy_model").build(
            gym.spaces.Box(-1, 1, (2,)), gym.spaces.Box(-1, 1, (1,)))


def test_trpo_with_an_lstm_remembers_a_cue():
    agent = tfpg.TRPO(seed=0, recurrent="lstm", recurrent_units=32, rollout_steps=64)
    agent.fit(_vector(CueEnv, 8), 6144, verbose=0)
    assert agent.evaluate(CueEnv(), episodes=100)["mean_return"] >= 0.9  # without memory: 0.5 expected


def test_ppo_with_a_recurrent_policy_tells_an_unmarked_first_step_which_a_feed_forward_one_cannot():
    def accuracy(agent):
        agent.fit(_vector(FirstStepEnv, 8), 4096, verbose=0)
        result = agent.evaluate(FirstStepEnv(), episodes=100)
        return sum(result["returns"]) / sum(result["lengths"])

    settings = dict(seed=0, rollout_steps=64, sequence_length=16, learning_rate=1e-3)
    assert accuracy(tfpg.PPO(recurrent="lstm", recurrent_units=32, **settings)) >= 0.95
    # without a state that starts afresh, always acting 0 is best: right on about 70% of steps
    assert accuracy(tfpg.PPO(**settings)) <= 0.8


def test_the_launcher_trains_and_exports_a_recurrent_policy_that_serves_an_episode_as_predict_does(tmp_path):
    import json
    import subprocess
    import sys

    from helpers import BLOCKED_IMPORTS, run

    logdir = tmp_path / "run"
    trained = run(["-m", "tfpg.train", "--algo=ppo", "--env=CartPole-v1", "--num_envs=2", "--rollout_steps=16",
                   "--sequence_length=8", "--recurrent=gru", "--recurrent_units=8", "--steps=64",
                   "--eval_episodes=1", "--verbose=0", f"--logdir={logdir}"])
    assert trained.returncode == 0, trained.stderr[-3000:]
    evaluated = run(["-m", "tfpg.evaluate", f"--policy={logdir / 'policy'}", "--episodes=2"])
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]

    agent = tfpg.load(str(logdir / "checkpoints"))
    env = gym.make("CartPole-v1")
    observation, _ = env.reset(seed=5)
    observations, actions, state, done = [], [], None, False
    while not done:  # one whole episode acted by predict, carrying the state
        action, state = agent.predict(observation, state=state)
        observations.append(observation)
        actions.append(int(action))
        observation, _, terminated, truncated, _ = env.step(action)
        done = terminated or truncated
    np.save(tmp_path / "obs.npy", np.array(observations, np.float32))
    script = BLOCKED_IMPORTS + f"""
import json
import numpy as np
import tensorflow as tf
policy = tf.saved_model.load({str(logdir / 'policy')!r})
state = policy.signatures["initial_state"](batch_size=tf.constant(1))
actions = []
for step, observation in enumerate(np.load({str(tmp_path / 'obs.npy')!r})):
    out = policy.signatures["serving_default"](observations=tf.constant(observation[None]),
                                               episode_start=tf.constant([step == 0]), **state)
    state = {{name: out[name] for name in state}}
    actions.append(int(out["actions"].numpy()[0]))
print(json.dumps(actions))
"""
    served = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert served.returncode == 0, served.stderr[-3000:]
    assert json.loads(served.stdout.strip().splitlines()[-1]) == actions


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_the_fisher_vector_product_through_a_recurrent_policy_matches_the_explicit_kl_hessian(kind):
    import tensorflow_probability as tfp

    from tfpg.optimizers import fisher_vector_product, flatten

    rng = np.random.default_rng(0)
    core = RecurrentCore(kind, 3, dtype="float64")
    features = tf.constant(rng.normal(size=(4 * 2, 2)))  # 4 steps of 2 sequences; the second restarts at step 2
    starts = tf.constant([1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0], tf.float64)
    state = tf.zeros([2, core.state_size], tf.float64)
    core(features, starts, state)
    head = tf.Variable(rng.normal(size=(3, 4)))
    variables = [*core.trainable_variables, head]
    assert all(v.dtype == tf.float64 for v in variables)

    def distribution():
        outputs, _, _ = core(features, starts, state)
        return tfp.distributions.Categorical(logits=outputs @ head)

    old = tfp.distributions.Categorical(logits=tf.constant(distribution().logits))

    def mean_kl():
        return tf.reduce_mean(tfp.distributions.kl_divergence(old, distribution()))

    with tf.GradientTape(persistent=True) as outer:  # (jacobian without vectorisation needs it)
        with tf.GradientTape() as inner:
            kl = mean_kl()
        gradient = flatten(inner.gradient(kl, variables))
    columns = outer.jacobian(gradient, variables, experimental_use_pfor=False)
    hessian = np.concatenate([tf.reshape(c, [gradient.shape[0], -1]).numpy() for c in columns], axis=1)
    vector = tf.constant(rng.normal(size=gradient.shape))
    product = fisher_vector_product(mean_kl, variables, vector).numpy()
    expected = hessian @ vector.numpy()
    assert np.linalg.norm(expected) > 1e-3
    assert np.linalg.norm(product - expected) / np.linalg.norm(expected) < 1e-6
    np.testing.assert_allclose(hessian, hessian.T, atol=1e-10)
    assert np.linalg.eigvalsh(hessian).min() > -1e-10  # a Fisher matrix is positive semi-definite


def test_ppo_balances_cartpole_with_its_velocities_hidden_only_with_a_recurrent_policy():
    def evaluated(**settings):
        agent = tfpg.PPO(seed=0, rollout_steps=32, minibatch_size=256, learning_rate=1e-3, gae_lambda=0.98,
                         **settings)
        agent.fit(_vector(lambda: tfpg.envs.MaskObservation(gym.make("CartPole-v1"), keep=[0, 2]), 8), 40_000,
                  verbose=0)
        return agent.evaluate(tfpg.envs.MaskObservation(gym.make("CartPole-v1"), keep=[0, 2]),
                              episodes=20)["mean_return"]

    assert evaluated(recurrent="lstm", recurrent_units=32, sequence_length=32) >= 300
    assert evaluated() < 150  # positions alone: the same budget keeps the pole up for a few dozen steps


def test_a_users_one_step_recurrent_policy_and_value_learn_to_remember_a_cue(tmp_path):
    agent = tfpg.PPO(seed=0, policy="user_networks:recurrent_policy", value="user_networks:recurrent_value",
                     rollout_steps=64, sequence_length=16, learning_rate=1e-3)
    agent.fit(_vector(CueEnv, 8), 6144, verbose=0)
    assert agent.state_sizes == {"policy": 16, "value": 8}
    assert agent.evaluate(CueEnv(), episodes=100)["mean_return"] >= 0.9  # without memory: 0.5 expected
    agent.save(str(tmp_path / "run"))
    loaded = tfpg.load(str(tmp_path / "run"))
    observations = np.array([[1.0], [-1.0]], np.float32)
    np.testing.assert_allclose(loaded.predict(observations)[1], agent.predict(observations)[1], atol=1e-6)


@pytest.mark.parametrize("value", [None, "user_networks:value_model"])
def test_a_users_recurrent_policy_serves_as_it_predicts_beside_a_feed_forward_value_model(value, tmp_path):
    agent = tfpg.A2C(seed=0, policy="user_networks:recurrent_policy", value=value, rollout_steps=8)
    agent.fit(_vector(CueEnv, 2), 32, verbose=0)
    assert agent.state_sizes == {"policy": 16}
    served = tf.saved_model.load(agent.export(str(tmp_path / "policy"))).signatures
    state, served_state = None, served["initial_state"](batch_size=tf.constant(1))
    for step, observation in enumerate([[1.0], [0.0], [0.0], [-1.0]]):
        action, state = agent.predict(np.array(observation, np.float32), state=state)
        out = served["serving_default"](observations=tf.constant([observation]), episode_start=tf.constant([step == 0]),
                                        **served_state)
        served_state = {name: out[name] for name in served_state}
        assert out["actions"].numpy()[0] == action
        np.testing.assert_allclose(out["policy_state"], state, atol=1e-5)
    assert set(served_state) == {"policy_state"}


def test_a_users_recurrent_model_that_breaks_the_contract_is_refused_naming_it():
    import keras

    class NoState(keras.Model):
        state_size = 4

        def __init__(self):
            super().__init__()
            self.layer = keras.layers.Dense(2)

        def call(self, observations, state):
            return tfp_categorical(self.layer(observations))

    with pytest.raises(ValueError, match=r"must return \(output, new_state\)"):
        tfpg.PPO(policy=lambda o, a: NoState()).build(CueEnv.observation_space, CueEnv.action_space)
    with pytest.raises(ValueError, match="value model is recurrent .* but the policy is not"):
        tfpg.PPO(value="user_networks:recurrent_value").build(CueEnv.observation_space, CueEnv.action_space)
    with pytest.raises(ValueError, match="ACKTR .* a recurrent policy .* is refused"):
        tfpg.ACKTR(policy="user_networks:recurrent_policy").build(CueEnv.observation_space, CueEnv.action_space)


def tfp_categorical(logits):
    import tensorflow_probability as tfp

    return tfp.distributions.Categorical(logits=logits)
