"""Image observations: recognised, kept uint8, seen by tfpg's CNN, learned, checkpointed and exported."""

import numpy as np
import pytest
import tensorflow as tf

import tfpg
from helpers import serve_without_tfpg
from image_envs import BrightSideEnv
from tfpg.image_encoder import ImageEncoder, is_image
from tfpg.space_descriptions import describe_observation_space


def test_images_are_uint8_boxes_of_rank_three_with_pixel_bounds():
    from gymnasium import spaces
    assert is_image(describe_observation_space(spaces.Box(0, 255, (84, 84, 4), np.uint8)))
    assert is_image(describe_observation_space(spaces.Box(0, 255, (4, 84, 84), np.uint8)))
    assert not is_image(describe_observation_space(spaces.Box(0, 1, (84, 84, 4), np.uint8)))
    assert not is_image(describe_observation_space(spaces.Box(0, 255, (84, 84, 4), np.float32)))
    assert not is_image(describe_observation_space(spaces.Box(0, 255, (84, 84), np.uint8)))


@pytest.mark.parametrize("side, channels_first, convolutions", [(12, False, 2), (36, True, 3)])
def test_ppo_learns_an_image_env_with_the_default_cnn(side, channels_first, convolutions):
    env = BrightSideEnv(side=side, channels_first=channels_first)
    agent = tfpg.PPO(seed=0, rollout_steps=512, minibatch_size=64, epochs=4)
    agent.fit(env, steps=8 * 512, verbose=0)
    assert isinstance(agent.policy.features, ImageEncoder) and agent.observation_normalizer is None
    assert len(agent.policy.features.convolutions) == convolutions  # the Nature CNN from 36 pixels a side
    assert agent._acting.mirror is None
    rollout = agent.collect(env, 16)
    assert rollout.observations.dtype == np.uint8  # stored as the env gives them
    # blind policies score 4 of 8 on average; looking at the bar scores 8
    assert agent.evaluate(BrightSideEnv(side=side, channels_first=channels_first), episodes=10)["mean_return"] >= 7.5


def test_the_cnn_is_also_a_named_encoder():
    env = BrightSideEnv(side=12)
    agent = tfpg.A2C(seed=0, encoder="cnn")
    agent.build(env.observation_space, env.action_space)
    assert isinstance(agent.policy.features, ImageEncoder) and agent.networks.record() == {"encoder": "cnn"}


def test_the_cnn_sees_pixels_scaled_to_the_unit_interval_in_channels_last_order():
    env = BrightSideEnv(side=36, channels_first=True, channels=2)
    agent = tfpg.A2C(seed=0)
    agent.build(env.observation_space, env.action_space)
    images = np.random.default_rng(0).integers(0, 256, (3, 2, 36, 36)).astype(np.uint8)
    encoder = agent.policy.features
    scaled = tf.constant(np.transpose(images, (0, 2, 3, 1)).astype(np.float32) / 255.0)
    expected = scaled
    for layer in encoder.convolutions:
        expected = layer(expected)
    expected = encoder.dense(tf.reshape(expected, [3, -1]))
    np.testing.assert_allclose(encoder(agent.policy.encoder(images)).numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)


def test_an_image_policy_checkpoints_and_serves_uint8_with_tensorflow_alone(tmp_path):
    env = BrightSideEnv(side=12)
    agent = tfpg.PPO(seed=2, rollout_steps=64, minibatch_size=32, epochs=1)
    agent.fit(env, steps=64, verbose=0)
    observations = agent.collect(env, 8).flat("observations")
    agent.save(str(tmp_path / "checkpoints"))
    loaded = tfpg.load(str(tmp_path / "checkpoints"))
    np.testing.assert_array_equal(loaded.predict(observations), agent.predict(observations))
    loaded.fit(env, steps=64, verbose=0)  # resumes
    assert loaded.total_steps == agent.total_steps + 64 and loaded.iterations == 2
    actions = np.array([0, 1] * 4, np.int64)
    out = serve_without_tfpg(agent.export(str(tmp_path / "policy")), observations, actions, tmp_path)
    np.testing.assert_array_equal(out["actions"], agent.predict(observations))
    np.testing.assert_allclose(out["value"], agent.value_model(observations).numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"in \[0, 255\]"):
        agent.predict(observations.astype(np.float32) * 2.0)
