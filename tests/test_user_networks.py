"""The user's own networks: encoder and full-model seams through every algorithm, checks, checkpoints, export."""

import gymnasium as gym
import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfpg
import user_networks
from helpers import explicit_hessian, read_csv, run, serve_without_tfpg
from tfpg.optimizers import fisher_vector_product

tfd = tfp.distributions
ALGORITHMS = [tfpg.REINFORCE, tfpg.A2C, tfpg.NPG, tfpg.TRPO, tfpg.PPO, tfpg.ACKTR]
SEAMS = {
    "encoder": dict(encoder=user_networks.small_encoder),
    "full": dict(policy=user_networks.policy_model, value=user_networks.value_model),
}
SMALL = {"ppo": dict(minibatch_size=32, epochs=2)}


def _spaces(env_id):
    env = gym.make(env_id)
    spaces = env.observation_space, env.action_space
    env.close()
    return spaces


@pytest.mark.parametrize("seam", sorted(SEAMS))
@pytest.mark.parametrize("algorithm", ALGORITHMS, ids=lambda a: a.name)
def test_every_algorithm_trains_saves_loads_and_exports_a_user_network(algorithm, seam, tmp_path):
    env_id = "Pendulum-v1" if algorithm.name in ("ppo", "trpo") else "CartPole-v1"
    agent = algorithm(seed=0, rollout_steps=64, **SEAMS[seam], **SMALL.get(algorithm.name, {}))
    rollout = agent.collect(env_id, 64)
    assert agent._acting.mirror is None  # a user's network acts through TensorFlow
    observations = tf.constant(rollout.flat("observations"))
    np.testing.assert_allclose(agent.policy(observations).log_prob(rollout.flat("actions")).numpy(),
                               rollout.flat("log_probs"), rtol=1e-5, atol=1e-5)
    user_parts = (agent.policy.features if seam == "encoder" else agent.policy.model).trainable_variables
    start = [v.numpy() for v in user_parts]
    logs = agent.train_on_batch(rollout)
    if logs.get("line_search_success", 1.0):  # (a rejected TRPO step keeps θ_old)
        assert all(not np.array_equal(a, v.numpy()) for a, v in zip(start, user_parts))

    agent.save(str(tmp_path / "checkpoints"))
    loaded = tfpg.load(str(tmp_path / "checkpoints"))  # the factories are found by their recorded names
    assert loaded.networks.record() == agent.networks.record()
    for saved, restored in zip(agent.policy.variables + agent.value_model.variables,
                               loaded.policy.variables + loaded.value_model.variables):
        np.testing.assert_array_equal(saved.numpy(), restored.numpy())
    batch = rollout.flat("observations")[:5]
    np.testing.assert_array_equal(loaded.predict(batch), agent.predict(batch))
    loaded.fit(env_id, steps=64, verbose=0)  # resumes
    assert loaded.total_steps == 128 and loaded.iterations == 2

    exported = tf.saved_model.load(agent.export(str(tmp_path / "policy")))
    served = exported.signatures["serving_default"](observations=tf.constant(batch, tf.float32))["actions"]
    np.testing.assert_allclose(served.numpy(), agent.predict(batch), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seam", sorted(SEAMS))
def test_an_exported_user_network_serves_with_tensorflow_alone(seam, tmp_path):
    agent = tfpg.PPO(seed=1, rollout_steps=64, minibatch_size=32, epochs=1, **SEAMS[seam])
    agent.fit("Pendulum-v1", steps=64, verbose=0)
    observations = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, -8.0]], np.float32)
    actions = np.array([[0.3], [-1.5]], np.float32)
    out = serve_without_tfpg(agent.export(str(tmp_path / "policy")), observations, actions, tmp_path)
    np.testing.assert_allclose(out["actions"], agent.predict(observations), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["value"], agent.value_model(observations).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["log_prob"], agent.policy(observations).log_prob(actions).numpy(),
                               rtol=1e-5, atol=1e-5)


def test_the_user_model_sees_normalised_observations_and_a_categorical_becomes_flat_actions():
    seen = []

    class Recording(user_networks.CategoricalPolicy):
        def call(self, observations):
            seen.append(observations)
            return super().call(observations)

    agent = tfpg.A2C(seed=0, policy=lambda o, a: Recording(int(a.n)))
    agent.collect("CartPole-v1", 200)
    observations = np.array([[0.1, -2.0, 0.05, 3.0]], np.float32)
    distribution = agent.policy(observations)
    normalizer = agent.observation_normalizer
    expected = (observations - normalizer.mean.numpy()) / np.sqrt(normalizer.variance.numpy() + 1e-8)
    np.testing.assert_allclose(seen[-1].numpy(), expected, rtol=1e-5)
    assert distribution.event_shape == [1] and distribution.batch_shape == [1]
    logits = agent.policy.model.logits(agent.policy.model.hidden(seen[-1]))
    np.testing.assert_allclose(distribution.log_prob([[1]]).numpy(), tf.nn.log_softmax(logits)[:, 1].numpy(),
                               rtol=1e-6)


def test_the_numpy_mirror_is_chosen_by_the_model_structure():
    spaces = _spaces("CartPole-v1")
    default = tfpg.PPO(seed=0)
    default.build(*spaces)
    assert default._acting.mirror is not None
    gelu = tfpg.PPO(seed=0, activation="gelu")  # an activation the mirror does not compute
    gelu.build(*spaces)
    assert gelu._acting.mirror is None
    encoded = tfpg.PPO(seed=0, encoder=user_networks.small_encoder)
    encoded.build(*spaces)
    assert encoded._acting.mirror is None
    from tfpg.numpy_policy import mirrors
    default.policy.hidden[0].activation = lambda x: tf.tanh(x) * 2.0  # same name nowhere: a new function
    assert not mirrors(default.policy)


@pytest.mark.learning
def test_a_custom_encoder_trains_cartpole():
    # 4 copies: a user's encoder acts through one TensorFlow call per vector step
    agent = tfpg.PPO(seed=0, encoder=user_networks.small_encoder, hidden_sizes=(64,), rollout_steps=512)
    agent.fit("CartPole-v1", steps=12 * 2048, num_envs=4, verbose=0)  # 500 on seeds 0-2 (benchmarks/RESULTS.md)
    assert agent.evaluate("CartPole-v1", episodes=10)["mean_return"] >= 450


def test_a_shared_encoder_is_called_once_and_a_separate_one_per_network():
    calls = []

    def counting(space):
        calls.append(space)
        return user_networks.small_encoder(space)

    spaces = _spaces("CartPole-v1")
    shared = tfpg.A2C(seed=0, encoder=counting, shared_network=True)
    shared.build(*spaces)
    assert len(calls) == 1 and shared.value_model.features is shared.policy.features
    calls.clear()
    separate = tfpg.PPO(seed=0, encoder=counting)  # policy, value model and π_old
    separate.build(*spaces)
    assert len(calls) == 3 and separate.value_model.features is not separate.policy.features
    assert isinstance(calls[0], gym.spaces.Box) and calls[0].shape == (4,)


def _bad_policy(output):
    class Bad(keras.Model):
        def __init__(self):
            super().__init__()
            self.layer = keras.layers.Dense(2)

        def call(self, observations):
            return output(self.layer(observations))

    return lambda o, a: Bad()


@pytest.mark.parametrize("arguments, message", [
    (dict(policy=_bad_policy(lambda x: x)), "returned .*Tensor.*expected a tfd.Distribution"),
    (dict(policy=_bad_policy(lambda x: tfd.Independent(tfd.Normal(x, 1.0), 1))),
     r"event shape \[2\], dtype float32.*expected .*event shape \[1\] and dtype int32"),
    (dict(policy=_bad_policy(lambda x: tfd.Categorical(logits=tf.cast(x, tf.float64), dtype=tf.int64))),
     "dtype int64.*expected .*dtype int32"),
    (dict(policy=lambda o, a: keras.Sequential([keras.Input((5,)), keras.layers.Dense(2)])),
     r"policy model could not be called on a batch of observations of shape \(2, 4\)"),
    (dict(value=lambda o, a: keras.Sequential([keras.layers.Dense(2)])),
     r"value model returned a float32 tensor of shape \[2, 2\] for a batch of 2 observations; expected float "
     r"values of shape \[2\]"),
    (dict(encoder=lambda o: keras.layers.Lambda(lambda x: tf.cast(x > 0, tf.int32))),
     "encoder returned a int32 tensor"),
    (dict(encoder=lambda o: "not a layer"), "returned str; it must return a new keras layer"),
    (dict(encoder=lambda o, _shared=keras.layers.Dense(4): _shared), "same Dense object on two calls"),
])
def test_bad_models_are_refused_when_the_agent_is_built(arguments, message):
    agent = tfpg.PPO(seed=0, **arguments)
    with pytest.raises(ValueError, match=message):
        agent.build(*_spaces("CartPole-v1"))
    assert not agent.built


def _heads_policy(classes, multi=True):
    """A policy with one categorical head per entry of `classes` (a plain Categorical when not `multi`)."""
    class Heads(keras.Model):
        def __init__(self):
            super().__init__()
            self.heads = [keras.layers.Dense(n) for n in classes]

        def call(self, observations):
            logits = [head(observations) for head in self.heads]
            if not multi:
                return tfd.Categorical(logits=logits[0])
            return tfd.Blockwise([tfd.Categorical(logits=each) for each in logits])

    return lambda o, a: Heads()


@pytest.mark.parametrize("layer, message", [
    (lambda: keras.layers.Dropout(0.5), r"'dropped' \(Dropout\), which only acts in training mode"),
    (lambda: keras.layers.BatchNormalization(), "Use LayerNormalization"),
    (lambda: keras.layers.GaussianNoise(0.1), "would silently do nothing"),
])
def test_layers_that_only_act_in_training_mode_are_refused_in_every_user_model(layer, message):
    def with_layer():
        made = layer()
        made.name = "dropped"
        return keras.Sequential([keras.layers.Dense(8), made])

    for arguments, what in [(dict(encoder=lambda o: with_layer()), "encoder"),
                            (dict(value=lambda o, a: keras.Sequential([with_layer(), keras.layers.Dense(1)])),
                             "value model")]:
        agent = tfpg.PPO(**arguments)
        with pytest.raises(ValueError, match=f"The {what} holds layer .*{message}"):
            agent.build(*_spaces("CartPole-v1"))


def test_a_stateful_recurrent_layer_is_refused_and_a_stateless_one_over_a_window_trains():
    window = gym.spaces.Box(-1, 1, (5, 3), np.float32)

    def recurrent(stateful):
        return lambda o: keras.Sequential([keras.layers.LSTM(8, stateful=stateful)])

    with pytest.raises(ValueError, match="stateful recurrent layer .*state would leak"):
        tfpg.PPO(encoder=recurrent(True)).build(window, gym.spaces.Discrete(2))
    tfpg.PPO(encoder=recurrent(False)).build(window, gym.spaces.Discrete(2))


def test_a_policy_distribution_without_an_analytic_kl_or_entropy_is_refused_when_the_agent_is_built():
    class Mixture(keras.Model):
        def __init__(self):
            super().__init__()
            self.layer = keras.layers.Dense(4)

        def call(self, observations):
            out = self.layer(observations)
            mixture = tfd.MixtureSameFamily(tfd.Categorical(logits=out[:, :2]),
                                            tfd.Normal(out[:, 2:], tf.ones_like(out[:, 2:])))
            return tfd.Sample(mixture, 1)  # batch [batch], event [1]

    agent = tfpg.PPO(policy=lambda o, a: Mixture())
    with pytest.raises(ValueError, match="has no analytic entropy.*tfd.RegisterKL"):
        agent.build(gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Box(-1, 1, (1,), np.float32))
    assert not agent.built


def test_a_policy_no_gradient_can_train_is_refused_when_the_agent_is_built():
    class Fixed(keras.Model):  # the same uniform distribution whatever the weights
        def __init__(self):
            super().__init__()
            self.layer = keras.layers.Dense(2)

        def call(self, observations):
            return tfd.Categorical(logits=tf.zeros([tf.shape(observations)[0], 2]))

    class Deterministic(keras.Model):  # a Gaussian of zero standard deviation
        def __init__(self):
            super().__init__()
            self.layer = keras.layers.Dense(1)

        def call(self, observations):
            return tfd.Independent(tfd.Normal(self.layer(observations), 0.0), 1)

    observation = gym.spaces.Box(-1, 1, (3,), np.float32)
    with pytest.raises(ValueError, match="does not depend on the model's trainable variables"):
        tfpg.PPO(policy=lambda o, a: Fixed()).build(observation, gym.spaces.Discrete(2))
    with pytest.raises(ValueError, match=r"log-probabilities \[nan.*must be finite.*std > 0"):
        tfpg.PPO(policy=lambda o, a: Deterministic()).build(observation, gym.spaces.Box(-1, 1, (1,), np.float32))


def test_a_discrete_policy_whose_heads_do_not_match_the_action_space_is_refused():
    observation = gym.spaces.Box(-1, 1, (3,), np.float32)
    tfpg.PPO(policy=_heads_policy([3, 4])).build(observation, gym.spaces.MultiDiscrete([3, 4]))
    tfpg.PPO(policy=_heads_policy([2], multi=False)).build(observation, gym.spaces.Discrete(2))
    for classes, multi, space, message in [
            ([3, 3], True, gym.spaces.MultiDiscrete([3, 4]), r"MultiDiscrete \[3, 4\].*\(\[3, 4\]\)"),
            ([5], False, gym.spaces.Discrete(2), r"total probability .* on the valid actions .*Discrete 2"),
            ([4, 4], True, gym.spaces.MultiDiscrete([3, 4]), "total probability")]:
        agent = tfpg.PPO(policy=_heads_policy(classes, multi))
        with pytest.raises(ValueError, match=message):
            agent.build(observation, space)
        assert not agent.built


@pytest.mark.parametrize("arguments, message", [
    (dict(encoder=user_networks.small_encoder, policy=user_networks.policy_model), "not both"),
    (dict(policy=keras.Sequential([keras.layers.Dense(2)])), "pass the function that builds a new one"),
    (dict(encoder="no_such_network"), "neither a registered network name"),
    (dict(encoder="no_such_module:factory"), "could not be imported"),
    (dict(encoder="user_networks:missing"), "has no attribute 'missing'"),
])
def test_bad_network_arguments_are_refused_when_the_agent_is_made(arguments, message):
    with pytest.raises(ValueError, match=message):
        tfpg.PPO(seed=0, **arguments)


def test_shared_network_with_full_models_is_refused():
    agent = tfpg.A2C(seed=0, shared_network=True, **SEAMS["full"])
    with pytest.raises(ValueError, match="shared_network=True"):
        agent.build(*_spaces("CartPole-v1"))


def test_acktr_names_a_layer_kfac_cannot_precondition():
    def einsum_encoder(space):
        return keras.layers.EinsumDense("ab,bc->ac", output_shape=8, name="my_einsum")

    with pytest.raises(ValueError, match="cannot precondition layer 'my_einsum' .EinsumDense"):
        tfpg.ACKTR(seed=0, encoder=einsum_encoder).build(*_spaces("CartPole-v1"))

    class Twice(keras.Model):
        def __init__(self):
            super().__init__()
            self.square = keras.layers.Dense(4, name="reused")
            self.out = keras.layers.Dense(2)

        def call(self, x):
            return tfd.Categorical(logits=self.out(self.square(self.square(x))))

    with pytest.raises(ValueError, match="'reused' was called twice"):
        tfpg.ACKTR(seed=0, policy=lambda o, a: Twice()).build(*_spaces("CartPole-v1"))


def test_load_needs_an_unnamed_factory_again_and_refuses_another_architecture(tmp_path):
    agent = tfpg.A2C(seed=0, rollout_steps=8, encoder=lambda o: user_networks.small_encoder(o))
    agent.fit("CartPole-v1", steps=16, verbose=0)
    agent.save(str(tmp_path))
    with pytest.raises(ValueError, match=r"an encoder= factory that has no importable name.*"
                                         r"tfpg.load\(path, encoder=fn\)"):
        tfpg.load(str(tmp_path))
    loaded = tfpg.load(str(tmp_path), encoder=user_networks.small_encoder)
    np.testing.assert_array_equal(loaded.predict(np.zeros((3, 4))), agent.predict(np.zeros((3, 4))))

    def wider(space):
        return keras.Sequential([keras.layers.Dense(48, activation="relu"), keras.layers.Dense(16)])

    with pytest.raises(ValueError, match=r"another architecture: .*kernel .*has shape \[4, 32\] in the "
                                         r"checkpoint but \[4, 48\]"):
        tfpg.load(str(tmp_path), encoder=wider)
    with pytest.raises(ValueError, match="written without a policy= network"):
        tfpg.load(str(tmp_path), encoder=user_networks.small_encoder, policy=user_networks.policy_model)
    target = tfpg.A2C(seed=0, rollout_steps=8, encoder=wider)
    target.build(*_spaces("CartPole-v1"))
    before = [v.numpy() for v in target.policy.variables]
    with pytest.raises(ValueError, match="another architecture"):
        target.restore(str(tmp_path))
    for value, variable in zip(before, target.policy.variables):  # nothing was restored
        np.testing.assert_array_equal(value, variable.numpy())


def test_registered_names_are_recorded_and_found_again(tmp_path):
    tfpg.register_network("test_registered_encoder", user_networks.small_encoder)
    agent = tfpg.A2C(seed=0, rollout_steps=8, encoder="test_registered_encoder")
    agent.fit("CartPole-v1", steps=8, verbose=0)
    assert agent.networks.record() == {"encoder": "test_registered_encoder"}
    agent.save(str(tmp_path))
    assert tfpg.load(str(tmp_path)).networks.encoder is user_networks.small_encoder
    with pytest.raises(ValueError, match="without ':'"):
        tfpg.register_network("a:b", user_networks.small_encoder)


def test_fisher_vector_product_through_a_convolutional_user_policy_matches_the_kl_hessian():
    class ConvolutionalPolicy(keras.Model):
        def __init__(self):
            super().__init__(dtype="float64")
            self.reshape = keras.layers.Reshape((4, 1), dtype="float64")
            self.conv = keras.layers.Conv1D(2, 3, activation="tanh", dtype="float64")
            self.flat = keras.layers.Flatten(dtype="float64")
            self.logits = keras.layers.Dense(3, dtype="float64")

        def call(self, x):
            return tfd.Categorical(logits=self.logits(self.flat(self.conv(self.reshape(x)))))

    model = ConvolutionalPolicy()
    x = tf.constant(np.random.default_rng(0).normal(size=(6, 4)))
    model(x)
    variables = model.trainable_variables
    old = tfd.Categorical(logits=tf.constant(model(x).logits_parameter().numpy()))

    def mean_kl():
        return tf.reduce_mean(tfd.kl_divergence(old, model(x)))

    np.testing.assert_allclose(_call_with(x, variables).logits_parameter().numpy(),
                               model(x).logits_parameter().numpy(), rtol=1e-12)  # the same function
    hessian = explicit_hessian(lambda parameters: tf.reduce_mean(tfd.kl_divergence(old, _call_with(x, parameters))),
                               variables)
    vector = tf.constant(np.random.default_rng(1).normal(size=len(hessian)))
    product = fisher_vector_product(mean_kl, variables, vector).numpy()
    expected = hessian @ vector.numpy()
    assert np.linalg.norm(product - expected) / np.linalg.norm(expected) < 1e-6


def _call_with(x, parameters):
    """The model's distribution with its variables replaced by tensors (for an explicit Hessian)."""
    kernel, bias, dense_kernel, dense_bias = parameters
    hidden = tf.tanh(tf.nn.conv1d(tf.reshape(x, [-1, 4, 1]), kernel, stride=1, padding="VALID") + bias)
    return tfd.Categorical(logits=tf.reshape(hidden, [tf.shape(x)[0], -1]) @ dense_kernel + dense_bias)


def test_the_launcher_trains_and_resumes_a_named_encoder(tmp_path):
    logdir = str(tmp_path / "run")
    common = ["-m", "tfpg.train", "--algo=ppo", "--env=CartPole-v1", f"--logdir={logdir}", "--num_envs=1",
              "--verbose=0", "--eval_episodes=1"]
    first = run([*common, "--steps=128", "--rollout_steps=64", "--minibatch_size=32",
                 "--encoder=tests.user_networks:small_encoder", "--hidden_sizes="])
    assert first.returncode == 0, first.stderr[-3000:]
    refused = run([*common, "--steps=256", "--resume", "--encoder=tests.user_networks:small_encoder"])
    assert refused.returncode != 0 and "drop --encoder" in refused.stderr
    resumed = run([*common, "--steps=256", "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert [int(row["total_steps"]) for row in read_csv(f"{logdir}/progress.csv")] == [64, 128, 192, 256]
    agent = tfpg.load(f"{logdir}/checkpoints")
    assert agent.networks.record() == {"encoder": "tests.user_networks:small_encoder"}
    assert agent.config.hidden_sizes == () and not agent.policy.hidden
    bad = run(["-m", "tfpg.train", "--algo=ppo", "--env=CartPole-v1", f"--logdir={tmp_path / 'bad'}",
               "--policy_network=tests.user_networks:small_encoder"])  # an encoder factory: one argument
    assert bad.returncode != 0 and "The policy factory" in bad.stderr and not (tmp_path / "bad").exists()
