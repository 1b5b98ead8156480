"""PPO: loss values derived by hand, the β rule, one compiled update, checkpointed β."""

import gymnasium as gym
import keras
import numpy as np
import pytest
import tensorflow as tf

import tfpg
from tfpg.losses import adapted_kl_coefficient, clipped_surrogate_loss, clipped_value_loss, kl_penalty_loss

# Ratios inside and outside [1 - ε, 1 + ε] = [0.8, 1.2], with positive and negative advantages.
RATIOS = np.array([0.5, 0.5, 1.5, 1.5, 1.1, 0.9], np.float32)
ADVANTAGES = np.array([1.0, -1.0, 1.0, -1.0, 2.0, -3.0], np.float32)


def _log_probs():
    old = np.array([-1.0, -2.0, -0.5, -1.5, -1.0, -0.7], np.float32)
    return tf.constant(old + np.log(RATIOS)), tf.constant(old)


def test_clipped_surrogate_takes_the_pessimistic_term():
    new, old = _log_probs()
    loss, clip_fraction = clipped_surrogate_loss(new, old, tf.constant(ADVANTAGES), 0.2)
    # min(rA, clip(r)A) per sample:
    #   r=0.5,A=+1: min(0.5, 0.8)=0.5     r=0.5,A=-1: min(-0.5, -0.8)=-0.8
    #   r=1.5,A=+1: min(1.5, 1.2)=1.2     r=1.5,A=-1: min(-1.5, -1.2)=-1.5
    #   r=1.1,A=+2: 2.2 (inside)          r=0.9,A=-3: -2.7 (inside)
    expected = -np.mean([0.5, -0.8, 1.2, -1.5, 2.2, -2.7])
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert float(clip_fraction) == pytest.approx(4 / 6)


def test_clipped_surrogate_gradient_vanishes_only_where_clipping_binds():
    new, old = _log_probs()
    new = tf.Variable(new)
    with tf.GradientTape() as tape:
        loss, _ = clipped_surrogate_loss(new, old, tf.constant(ADVANTAGES), 0.2)
    gradient = tape.gradient(loss, new).numpy()
    # d/dlogπ of −rA/n is −rA/n where the unclipped term is the minimum, 0 where the clipped one is.
    expected = -RATIOS * ADVANTAGES / 6
    expected[[2, 1]] = 0.0   # r=1.5,A>0 and r=0.5,A<0: clipped term is smaller and constant
    np.testing.assert_allclose(gradient, expected, rtol=1e-5, atol=1e-7)


def test_kl_penalty_loss():
    new, old = _log_probs()
    kl = tf.constant([0.1, 0.2, 0.3, 0.0, 0.0, 0.6])
    loss = kl_penalty_loss(new, old, tf.constant(ADVANTAGES), kl, tf.constant(2.0))
    surrogate = np.mean(RATIOS * ADVANTAGES)       # (0.5 - 0.5 + 1.5 - 1.5 + 2.2 - 2.7) / 6
    assert float(loss) == pytest.approx(-(surrogate - 2.0 * 0.2), rel=1e-5)


@pytest.mark.parametrize("kl, expected", [
    (0.0151, 2.0), (0.015, 1.0), (0.012, 1.0), (0.00667, 1.0), (0.0066, 0.5), (0.0, 0.5),
])
def test_adaptive_beta_rule_at_both_thresholds(kl, expected):
    # d_targ = 0.01: doubles above 0.015, halves below 0.00666..., else unchanged
    assert float(adapted_kl_coefficient(tf.constant(1.0), tf.constant(kl), 0.01)) == expected


def test_clipped_value_loss_takes_the_larger_error():
    values = tf.constant([2.0, 0.0])
    old = tf.constant([1.0, 1.0])
    returns = tf.constant([3.0, 3.0])
    # sample 0: V=2 -> (2-3)^2=1; clipped 1+clip(1, ±0.5)=1.5 -> 2.25; max 2.25
    # sample 1: V=0 -> 9; clipped 1-0.5=0.5 -> 6.25; max 9
    assert float(clipped_value_loss(values, old, returns, 0.5)) == pytest.approx((2.25 + 9.0) / 2)


def _fit(loss, **kwargs):
    agent = tfpg.PPO(seed=0, loss=loss, rollout_steps=128, minibatch_size=32, **kwargs)
    history = agent.fit("CartPole-v1", steps=256, verbose=0)
    return agent, history.history


def test_adaptive_beta_follows_the_rule_and_fixed_beta_stays():
    agent, history = _fit("adaptive_kl", kl_target=0.001)
    beta = 1.0
    for kl, reported in zip(history["kl"], history["kl_beta"]):
        beta = float(adapted_kl_coefficient(tf.constant(beta), tf.constant(kl), 0.001))
        assert reported == pytest.approx(beta)
    _, fixed = _fit("fixed_kl", initial_kl_beta=3.0)
    assert fixed["kl_beta"] == [3.0, 3.0]


def test_beta_survives_save_and_restore(tmp_path):
    agent, _ = _fit("adaptive_kl", kl_target=1e-6)  # KL far above target: β doubles every update
    assert float(agent.kl_beta.numpy()) == 4.0
    agent.save(str(tmp_path))
    assert float(tfpg.load(str(tmp_path)).kl_beta.numpy()) == 4.0


def test_whole_update_is_one_compiled_call_and_target_kl_stops_epochs():
    agent, history = _fit("clip")
    assert history["epochs"] == [10, 10]
    assert agent._train_step.experimental_get_tracing_count() == 1
    # 128 samples / 32 per minibatch x 10 epochs
    assert int(agent.optimizer.iterations.numpy()) == 2 * 4 * 10
    _, early = _fit("clip", target_kl=1e-9)
    assert early["epochs"] == [1, 1]


def test_shared_network_shares_hidden_layers():
    agent, _ = _fit("clip", shared_network=True)
    policy_hidden = {id(v) for layer in agent.policy.hidden for v in layer.variables}
    value_hidden = {id(v) for layer in agent.value_model.hidden for v in layer.variables}
    assert policy_hidden == value_hidden
    assert len(agent._variables) == len({id(v) for v in agent._variables})


def test_learning_rate_anneals_linearly_with_total_steps():
    agent, history = _fit("clip", learning_rate=1e-3, learning_rate_decay_steps=512)
    # set before each update from the steps collected before its batch: 0 then 128 of 512
    assert history["learning_rate"] == pytest.approx([1e-3, 1e-3 * (1 - 128 / 512)])


def test_the_linear_schedule_anneals_to_zero_at_each_fits_step_target():
    agent, history = _fit("clip", learning_rate=1e-3, learning_rate_schedule="linear")
    # one fit of 256 steps in batches of 128: the batches start at 0 and 128 of 256
    assert history["learning_rate"] == pytest.approx([1e-3, 1e-3 * (1 - 128 / 256)])
    more = agent.fit("CartPole-v1", steps=256, verbose=0).history
    # the next fit trains to 512: its batches start at 256 and 384
    assert more["learning_rate"] == pytest.approx([1e-3 * (1 - 256 / 512), 1e-3 * (1 - 384 / 512)])
    batch = agent.collect("CartPole-v1", 128)
    agent.train_on_batch(batch)  # outside fit there is no step target: the configured rate
    assert float(agent.optimizer.learning_rate.numpy()) == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="learning_rate_schedule='constant'"):
        tfpg.ACKTR(learning_rate_schedule="linear").build(gym.spaces.Box(-1, 1, (3,), np.float32),
                                                          gym.spaces.Discrete(2))


@pytest.mark.parametrize("encoder", [None, lambda space: keras.Sequential([keras.layers.Dense(8, activation="relu")])])
def test_a_shared_torso_is_computed_once_with_the_same_values_and_gradients(encoder):
    agent = tfpg.PPO(seed=0, shared_network=True, encoder=encoder)
    agent.build(gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Discrete(2))
    assert agent._shares_torso
    observations = tf.constant(np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32))
    actions = tf.constant([[0], [1], [1], [0], [1]], tf.int32)
    variables = agent._variables
    with tf.GradientTape(persistent=True) as tape:
        distribution, values = agent._policy_and_values(observations)
        once = tf.reduce_sum(distribution.log_prob(actions)) + tf.reduce_sum(values ** 2)
        twice = tf.reduce_sum(agent.policy(observations).log_prob(actions)) \
            + tf.reduce_sum(agent.value_model(observations) ** 2)
    np.testing.assert_allclose(once.numpy(), twice.numpy(), rtol=1e-6)
    for a, b in zip(tape.gradient(once, variables), tape.gradient(twice, variables)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7)
    separate = tfpg.PPO(seed=0)
    separate.build(gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Discrete(2))
    assert not separate._shares_torso
