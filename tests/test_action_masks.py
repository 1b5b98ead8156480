"""Action masks from a Dict observation entry: the masked distribution, its math, collection, export."""

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfpg
from tfpg.action_masks import MaskedLogits
from tfpg.errors import EnvError
from tfpg.optimizers import fisher_vector_product

from helpers import explicit_hessian
from mask_envs import LegalMovesEnv, MaskOutsideObservation, NothingAllowedEnv

tfd = tfp.distributions
Box, Dict, Discrete = gym.spaces.Box, gym.spaces.Dict, gym.spaces.Discrete


def _observations(masks, rng):
    masks = np.asarray(masks, np.int8)
    return {"action_mask": masks, "x": rng.normal(size=(len(masks), 3)).astype(np.float32)}


def _masked_agent(action_space, size):
    agent = tfpg.PPO(seed=0)
    agent.build(Dict({"x": Box(-5, 5, (3,), np.float32), "action_mask": Box(0, 1, (size,), np.int8)}), action_space)
    return agent


def test_a_mask_entry_that_cannot_mask_the_actions_is_refused_by_name_before_anything_is_built():
    x = Box(-1, 1, (3,), np.float32)
    for observation, action, message in [
            (Dict({"x": x, "action_mask": Box(0, 1, (5,), np.int8)}), Discrete(4), r"one 0/1 value per category: Box\(0, 1, \(4,\)\)"),
            (Dict({"x": x, "action_mask": Box(0, 2, (4,), np.int8)}), Discrete(4), "in \\[0.0, 2.0\\]"),
            (Dict({"x": x, "action_mask": Box(0, 1, (4,), np.int8)}), gym.spaces.MultiDiscrete([2, 3]), r"\(5,\)"),
            (Dict({"x": x, "action_mask": Discrete(4)}), Discrete(4), "is a Discrete"),
            (Dict({"x": x, "action_mask": Box(0, 1, (2,), np.int8)}), Box(-1, 1, (2,)), "actions are Box"),
            (Dict({"action_mask": Box(0, 1, (4,), np.int8)}), Discrete(4), "holds only the action mask")]:
        agent = tfpg.PPO()
        with pytest.raises(ValueError, match=message):
            agent.build(observation, action)
        assert not agent.built
    with pytest.raises(ValueError, match="action_mask_key='not a name'"):
        tfpg.PPO(action_mask_key="not a name")
    # with no mask key, the entry is an ordinary observation: normalised and encoded as a feature
    plain = tfpg.PPO(action_mask_key="")
    plain.build(Dict({"x": x, "action_mask": Box(0, 1, (2,), np.int8)}), Box(-1, 1, (2,)))
    assert plain.action_mask is None and plain.observation_normalizer.get("action_mask") is not None


@pytest.mark.parametrize("action_space, masks", [
    (Discrete(4), [[1, 0, 1, 0], [0, 0, 0, 1], [1, 1, 1, 1]]),
    (gym.spaces.MultiDiscrete([3, 2]), [[1, 0, 1, 1, 0], [0, 1, 0, 1, 1], [1, 1, 1, 1, 1]]),
])
def test_the_masked_policy_is_the_policy_renormalised_over_the_allowed_actions(action_space, masks):
    agent = _masked_agent(action_space, len(masks[0]))
    assert agent.action_mask == "action_mask" and agent.observation_normalizer.get("action_mask") is None
    rng = np.random.default_rng(0)
    observations = _observations(masks, rng)
    inputs = agent.observation_spec.model_input(observations)
    masked = agent.policy(inputs)
    unmasked = agent.policy({**inputs, "action_mask": tf.ones_like(inputs["action_mask"])})
    # the unmasked categoricals' probabilities restricted to the allowed categories and renormalised
    probabilities = unmasked.distribution.probs_parameter().numpy()  # [rows, D, widest]
    nvec = [4] if isinstance(action_space, Discrete) else list(action_space.nvec)
    allowed = np.zeros_like(probabilities, bool)
    for part, start in enumerate(np.cumsum([0] + nvec[:-1])):
        allowed[:, part, :nvec[part]] = np.asarray(masks)[:, start:start + nvec[part]] > 0
    expected = np.where(allowed, probabilities, 0.0)
    expected /= expected.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(masked.distribution.probs_parameter().numpy(), expected, rtol=1e-5, atol=1e-7)
    logs = np.log(np.where(allowed, expected, 1.0))
    np.testing.assert_allclose(masked.entropy().numpy(), -(expected * logs).sum(axis=(1, 2)), rtol=1e-5)
    samples = masked.sample(2000, seed=1).numpy()  # [2000, rows, D]
    for row in range(len(masks)):
        for part in range(len(nvec)):
            assert allowed[row, part][samples[:, row, part]].all()
            assert allowed[row, part][masked.mode().numpy()[row, part]]
    actions = agent.predict(observations)
    for row, action in enumerate(np.reshape(actions, (len(masks), -1))):
        assert all(allowed[row, part, a] for part, a in enumerate(action))


def test_the_masked_fisher_vector_product_equals_the_hessian_of_the_kl_over_the_allowed_actions():
    rng = np.random.default_rng(0)
    shapes = [(3, 5), (5,), (5, 4)]
    variables = [tf.Variable(rng.normal(size=s)) for s in shapes]
    x = tf.constant(rng.normal(size=(6, 3)))
    mask = np.ones((6, 4), np.float32)
    mask[rng.random((6, 4)) < 0.5] = 0
    mask[:, 0] = 1  # every row allows something
    masked_logits = MaskedLogits({"type": "Discrete", "n": 4, "start": 0})

    def logits(params):
        return tf.tanh(x @ params[0] + params[1]) @ params[2]

    def masked(params):  # tfpg's masked categorical, as its head builds it (float64 here)
        return tfd.Independent(tfd.Categorical(logits=masked_logits(logits(params)[:, None, :], mask)), 1)

    def allowed_log_probabilities(params):  # log-softmax over the allowed actions only, independently of tfpg
        values = logits(params)
        log_normaliser = tf.reduce_logsumexp(tf.where(mask > 0, values, -np.inf), axis=-1, keepdims=True)
        return values - log_normaliser

    fixed = [tf.constant(v.numpy()) for v in variables]
    old_masked, old_log_q = masked(fixed), allowed_log_probabilities(fixed)

    def reference_kl(params):
        log_q = allowed_log_probabilities(params)
        return tf.reduce_mean(tf.reduce_sum(tf.where(mask > 0, tf.exp(old_log_q) * (old_log_q - log_q), 0.0), -1))

    hessian = explicit_hessian(reference_kl, variables)
    vector = tf.constant(rng.normal(size=len(hessian)))
    product = fisher_vector_product(lambda: tf.reduce_mean(tfd.kl_divergence(old_masked, masked(variables))),
                                    variables, vector).numpy()
    expected = hessian @ vector.numpy()
    assert np.linalg.norm(expected) > 1e-3
    assert np.linalg.norm(product - expected) / np.linalg.norm(expected) < 1e-6


def test_collection_stops_at_a_mask_that_allows_nothing_naming_the_copy_and_step():
    agent = tfpg.A2C(seed=0, rollout_steps=8)
    with pytest.raises(EnvError, match=r"action mask of env copy \d at step 3 of the batch allows no action"):
        agent.fit(gym.vector.SyncVectorEnv([NothingAllowedEnv] * 2, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP),
                  steps=16, verbose=0)
    with pytest.raises(ValueError, match="row 1 of the observations allows no action"):
        agent.predict({"progress": np.zeros((2, 1)), "action_mask": np.array([[1] + [0] * 7, [0] * 8], np.int8)})


def test_every_algorithm_trains_with_a_mask_and_takes_no_illegal_action():
    for algorithm in tfpg.ALGORITHMS.values():
        env = LegalMovesEnv()
        agent = algorithm(seed=0, rollout_steps=16)
        history = agent.fit(env, steps=48, verbose=0)
        assert agent.action_mask == "action_mask" and env.illegal_actions == 0, algorithm.name
        assert all(np.isfinite(values).all() for name, values in history.history.items()
                   if name.endswith("loss")), (algorithm.name, history.history)


def test_a_masked_agent_takes_no_illegal_action_and_learns_faster_than_an_unmasked_one():
    settings = dict(rollout_steps=256, minibatch_size=64, epochs=4, learning_rate_schedule="constant")
    learning, final = {}, {}
    for key in ("action_mask", ""):  # "": the mask entry is an ordinary observation, normalised and encoded
        env = gym.vector.SyncVectorEnv([LegalMovesEnv] * 4, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
        agent = tfpg.PPO(seed=0, action_mask_key=key, **settings)
        history = agent.fit(env, steps=10_240, verbose=0)
        illegal = sum(copy.illegal_actions for copy in env.envs)
        assert illegal == 0 if key else illegal > 0
        learning[key] = np.nanmean(history.history["episode_return"])  # the mean training return of the run
        final[key] = agent.evaluate(LegalMovesEnv(), episodes=10)["mean_return"]
    # legal actions at random earn 9 per episode, the best policy about 14.4 (tests/mask_envs.py)
    assert final["action_mask"] >= 13.5, final
    assert learning["action_mask"] > learning[""] + 3.0, learning


def test_a_masked_policy_loads_and_exports_the_mask_as_a_checked_input(tmp_path):
    agent = tfpg.PPO(seed=0, rollout_steps=64, minibatch_size=32)
    agent.fit(LegalMovesEnv(mask_space="multibinary"), steps=128, verbose=0)
    agent.save(str(tmp_path / "checkpoints"))
    loaded = tfpg.load(str(tmp_path / "checkpoints"))
    rng = np.random.default_rng(3)
    masks = np.zeros((32, 8), np.int8)
    for row in masks:
        row[rng.permutation(8)[:2]] = 1
    observations = {"progress": rng.random((32, 1)).astype(np.float32), "action_mask": masks}
    actions = agent.predict(observations)
    np.testing.assert_array_equal(loaded.predict(observations), actions)
    assert masks[np.arange(32), actions].all()
    path = agent.export(str(tmp_path / "policy"))
    policy = tf.saved_model.load(path)
    served = policy.signatures["serving_default"](observations_progress=tf.constant(observations["progress"]),
                                                  observations_action_mask=tf.constant(masks, tf.float32))
    np.testing.assert_array_equal(served["actions"].numpy(), actions)
    with pytest.raises(tf.errors.InvalidArgumentError, match="observations_action_mask"):
        policy.signatures["serving_default"](observations_progress=tf.constant([[0.5]]),
                                             observations_action_mask=tf.constant([[2.0] + [0.0] * 7]))


@pytest.mark.parametrize("in_info", [True, False])
def test_a_mask_given_in_the_info_or_by_action_masks_becomes_an_observation_entry(in_info):
    env = tfpg.envs.ActionMaskEntry(MaskOutsideObservation(LegalMovesEnv(), in_info))
    assert env.observation_space == Dict({"observation": Box(0, 1, (1,), np.float32),
                                          "action_mask": gym.spaces.MultiBinary(8)})
    observation, _ = env.reset(seed=0)
    np.testing.assert_array_equal(observation["action_mask"], env.unwrapped.mask)
    agent = tfpg.PPO(seed=0, rollout_steps=64, minibatch_size=32)
    agent.fit(env, steps=128, verbose=0)
    assert agent.action_mask == "action_mask" and env.unwrapped.illegal_actions == 0


def test_the_info_mask_wins_over_action_masks_and_a_missing_or_wrong_mask_is_named():
    class Both(gym.Env):
        observation_space, action_space = Box(-1, 1, (2,), np.float32), Discrete(3)

        def __init__(self, info_mask=(0, 1, 0), method_mask=(1, 0, 0)):
            self.info_mask, self.method_mask = info_mask, method_mask

        def reset(self, *, seed=None, options=None):
            return np.zeros(2, np.float32), ({} if self.info_mask is None else {"action_mask": self.info_mask})

        def action_masks(self):
            return np.array(self.method_mask)

    observation, _ = tfpg.envs.ActionMaskEntry(Both()).reset()
    np.testing.assert_array_equal(observation["action_mask"], [0, 1, 0])
    observation, _ = tfpg.envs.ActionMaskEntry(Both(info_mask=None)).reset()
    np.testing.assert_array_equal(observation["action_mask"], [1, 0, 0])
    with pytest.raises(ValueError, match=r"info\['action_mask'\] has 2 values, but its action space Discrete\(3\) needs 3"):
        tfpg.envs.ActionMaskEntry(Both(info_mask=(1, 1))).reset()
    with pytest.raises(ValueError, match="apply to Discrete and MultiDiscrete actions"):
        tfpg.envs.ActionMaskEntry(gym.make("Pendulum-v1"))
    with pytest.raises(ValueError, match="gave no action mask"):
        tfpg.envs.ActionMaskEntry(gym.make("CartPole-v1")).reset(seed=0)
