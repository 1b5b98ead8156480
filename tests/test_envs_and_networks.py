"""Space support, env-facing action mapping and the distribution heads."""

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf
from gymnasium import spaces

import tfpg
from tfpg.envs import make_vector_env
from tfpg.networks import PolicyNetwork, ValueNetwork
from tfpg.space_descriptions import describe_action_space, describe_observation_space, to_env_actions


@pytest.mark.parametrize("space", [
    spaces.Dict({"a": spaces.Text(2)}),
    spaces.Tuple((spaces.Discrete(2), spaces.MultiDiscrete([2, 3]))),
    spaces.Text(5),
    spaces.Graph(spaces.Box(0, 1, (2,)), None),
    spaces.Box(0, 1, (0,)),
])
def test_unsupported_observation_spaces_are_named_with_the_supported_list(space):
    with pytest.raises(ValueError, match=r"Unsupported observation space .*Box, Discrete"):
        describe_observation_space(space)


@pytest.mark.parametrize("space", [spaces.Dict({"a": spaces.Discrete(2)}), spaces.Box(0, 5, (2,), np.int64),
                                   spaces.Tuple((spaces.Discrete(2),))])
def test_unsupported_action_spaces_raise_before_anything_is_built(space, counter_env):
    env = counter_env(action_space=space)
    agent = tfpg.A2C()
    with pytest.raises(ValueError, match="Unsupported action space .*MultiDiscrete, MultiBinary"):
        agent.collect(env, 4)
    assert not agent.built


def test_to_env_actions_clips_offsets_and_reshapes():
    box = describe_action_space(spaces.Box(-1.0, 2.0, (2, 2), np.float32))
    flat = np.array([[-5.0, 0.5, 3.0, 1.0]])
    np.testing.assert_array_equal(to_env_actions(flat, box), [[[-1.0, 0.5], [2.0, 1.0]]])
    discrete = describe_action_space(spaces.Discrete(3, start=-1))
    np.testing.assert_array_equal(to_env_actions(np.array([[0], [2]]), discrete), [-1, 1])
    multi = describe_action_space(spaces.MultiDiscrete([2, 3], start=[1, 10]))
    np.testing.assert_array_equal(to_env_actions(np.array([[1, 2]]), multi), [[2, 12]])


def test_vector_env_with_next_step_autoreset_is_refused_with_the_fix():
    env = gym.make_vec("CartPole-v1", num_envs=2)
    with pytest.raises(ValueError, match="SAME_STEP"):
        make_vector_env(env)
    env.close()
    with pytest.raises(ValueError, match="Unknown environment id 'NoSuchEnv-v0'"):
        make_vector_env("NoSuchEnv-v0")


@pytest.mark.parametrize("space, event", [
    (spaces.Box(-1, 1, (3,), np.float32), 3),
    (spaces.Discrete(4), 1),
    (spaces.MultiDiscrete([2, 5, 3]), 3),
    (spaces.MultiBinary(4), 4),
])
def test_policy_distributions_have_flat_events_and_consistent_log_probs(space, event):
    observation = describe_observation_space(spaces.Box(-1, 1, (2,), np.float32))
    action = describe_action_space(space)
    policy = PolicyNetwork(observation, action)
    distribution = policy(tf.random.normal((5, 2)))
    assert distribution.event_shape == [event]
    samples = distribution.sample(seed=(1, 2))
    assert samples.shape == (5, event)
    assert np.all(np.isfinite(distribution.log_prob(samples).numpy()))
    assert np.all(np.isfinite(distribution.entropy().numpy()))
    if isinstance(space, spaces.MultiDiscrete):
        # padded categories are never sampled and have no probability mass
        assert np.all(samples.numpy() < np.array([2, 5, 3]))
        np.testing.assert_allclose(distribution.distribution.probs_parameter().numpy()[:, 0, 2:], 0.0)
    env_actions = to_env_actions(samples.numpy(), action)
    assert all(space.contains(a) for a in env_actions)


def test_gaussian_log_prob_is_the_diagonal_normal_density():
    observation = describe_observation_space(spaces.Box(-1, 1, (2,), np.float32))
    action = describe_action_space(spaces.Box(-1, 1, (2,), np.float32))
    policy = PolicyNetwork(observation, action, initial_log_std=-0.5)
    x = tf.random.normal((3, 2))
    distribution = policy(x)
    mean = distribution.mean().numpy()
    a = mean + 0.3
    std = np.exp(-0.5)
    expected = np.sum(-0.5 * ((a - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi), axis=1)
    np.testing.assert_allclose(distribution.log_prob(a).numpy(), expected, rtol=1e-5)


def test_initial_std_is_a_fraction_of_each_action_half_range():
    observation = describe_observation_space(spaces.Box(-1, 1, (2,), np.float32))
    low, high = np.array([-2.0, 0.0, -np.inf], np.float32), np.array([2.0, 0.5, np.inf], np.float32)
    action = describe_action_space(spaces.Box(low, high, dtype=np.float32))
    policy = PolicyNetwork(observation, action, initial_log_std=-0.69)
    std = policy(tf.zeros((1, 2))).stddev().numpy()[0]
    # half-ranges 2 and 0.25; the unbounded dimension counts as 1
    np.testing.assert_allclose(std, np.exp(-0.69) * np.array([2.0, 0.25, 1.0]), rtol=1e-6)


def test_discrete_observations_are_one_hot_encoded():
    observation = describe_observation_space(spaces.Discrete(5, start=2))
    model = ValueNetwork(observation, hidden_sizes=(4,))
    encoded = model.encoder(tf.constant([2, 6]))
    np.testing.assert_array_equal(encoded.numpy(), np.eye(5)[[0, 4]])
    assert model(tf.constant([2, 3, 4])).shape == (3,)


def test_box_actions_of_another_float_width_are_the_same_task_and_other_bounds_are_not():
    from tfpg.space_descriptions import check_same_spaces

    observation = describe_observation_space(spaces.Box(-1, 1, (2,), np.float32))
    single = describe_action_space(spaces.Box(-1, 1, (3,), np.float32))
    double = describe_action_space(spaces.Box(-1, 1, (3,), np.float64))
    check_same_spaces((observation, single), (observation, double))
    with pytest.raises(ValueError, match="Create a new agent"):
        check_same_spaces((observation, single), (observation, describe_action_space(spaces.Box(-2, 2, (3,)))))


def test_mask_observation_keeps_the_named_entries_in_order_and_refuses_what_it_cannot_hide():
    full = gym.make("CartPole-v1")
    masked = tfpg.envs.MaskObservation(gym.make("CartPole-v1"), keep=[2, 0])
    assert masked.observation_space == spaces.Box(full.observation_space.low[[2, 0]],
                                                  full.observation_space.high[[2, 0]], (2,), np.float32)
    observation, _ = full.reset(seed=3)
    hidden, _ = masked.reset(seed=3)
    for _ in range(5):
        np.testing.assert_array_equal(hidden, observation[[2, 0]])
        assert masked.observation_space.contains(hidden)
        observation, *_ = full.step(1)
        hidden, *_ = masked.step(1)
    pendulum = tfpg.envs.MaskObservation(gym.make("Pendulum-v1"), keep=[-3, -2])
    np.testing.assert_array_equal(pendulum.keep, [0, 1])
    for keep, message in [([], "at least one entry"), ([0, 4], r"entries \[4\] outside"), ([1, -3], "twice"),
                          ("01", "integer indices"), ([0.5], "integer indices")]:
        with pytest.raises(ValueError, match=message):
            tfpg.envs.MaskObservation(gym.make("CartPole-v1"), keep=keep)
    with pytest.raises(ValueError, match="rank-1 Box.*FilterObservation"):
        tfpg.envs.MaskObservation(gym.make("FrozenLake-v1"), keep=[0])
