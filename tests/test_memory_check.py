"""The memory check counts the networks (activations, gradients, optimiser state), not only the stored batch."""

import gymnasium as gym
import numpy as np
import pytest

import tfpg
import tfpg.memory_check
from image_envs import BrightSideEnv
from tfpg.memory_check import activation_bytes, step_bytes

SIDE = 128
IMAGE = gym.spaces.Box(0, 255, (SIDE, SIDE, 3), np.uint8)


def _built(space, **settings):
    agent = tfpg.PPO(seed=0, **settings)
    agent.build(space, gym.spaces.Discrete(2))
    return agent


def test_the_activations_counted_include_the_scaled_image_and_the_first_convolution():
    agent = _built(IMAGE)
    total, largest = activation_bytes(agent._evaluate_fn.get_concrete_function())
    scaled_image = SIDE * SIDE * 3 * 4                      # float32 pixels in [0, 1]
    first_convolution = ((SIDE - 8) // 4 + 1) ** 2 * 32 * 4   # 32 filters of 8×8, stride 4, valid padding
    assert largest >= scaled_image
    assert total >= 2 * (scaled_image + first_convolution)   # the policy's and the value's networks


def test_a_batch_whose_stored_steps_fit_but_whose_activations_do_not_is_refused_before_anything_runs(monkeypatch):
    agent = _built(IMAGE, rollout_steps=256)
    stored = 256 * step_bytes(agent.observation_spec.stored_bytes(), 1, 2)
    monkeypatch.setattr(tfpg.memory_check, "available_memory", lambda: int(1.5 * stored))
    with pytest.raises(ValueError, match=r"GiB for the networks \(activations of \d+ bytes per row.*downscale"):
        agent.check_batch_memory(1)
    with pytest.raises(ValueError, match="for the networks"):
        agent.fit(BrightSideEnv(side=SIDE, channels=3), steps=256, verbose=0)
    assert agent.total_steps == 0


def test_the_optimiser_state_of_large_weights_is_counted(monkeypatch):
    agent = _built(IMAGE, rollout_steps=1)
    weights = sum(int(np.prod(v.shape)) * 4 for v in agent._trainable_variables())
    assert weights > 4 * 2**20   # the Dense layer after the convolutions alone has 12·12·64·512 weights
    monkeypatch.setattr(tfpg.memory_check, "available_memory", lambda: 2 * weights)
    with pytest.raises(ValueError, match=r"copies of \d+(\.\d+)? MiB of weights"):
        agent.check_batch_memory(1)


def test_vector_observations_with_the_defaults_need_little_beyond_their_steps(monkeypatch):
    agent = _built(gym.spaces.Box(-1, 1, (4,), np.float32))
    monkeypatch.setattr(tfpg.memory_check, "available_memory", lambda: 64 * 2**20)
    agent.check_batch_memory(8)   # 16384 steps of 4 floats, 64×64 networks


def test_images_too_large_for_the_default_encoder_are_refused_before_its_weights_are_made(monkeypatch):
    from tfpg.image_encoder import ImageEncoder

    side = 1024
    after_convolutions = ((side - 8) // 4 + 1 - 4) // 2 + 1 - 2   # 8×8/4, 4×4/2, 3×3/1
    dense_weights = after_convolutions ** 2 * 64 * 512              # 64 channels into 512 features
    dense_bytes = 4 * dense_weights
    monkeypatch.setattr(tfpg.memory_check, "available_memory", lambda: 4 * dense_bytes)
    with pytest.raises(ValueError, match=rf"1024×1024×3 images \(a Dense layer of {dense_weights:,} weights.*"
                                         r"ResizeObservation.*encoder="):
        ImageEncoder((side, side, 3))
    agent = tfpg.PPO(seed=0)
    with pytest.raises(ValueError, match="^tfpg's image encoder for 1024×1024×3 images .*Downscale the images"):
        agent.fit(BrightSideEnv(side=side, channels=3), steps=8, verbose=0)
    assert not agent.built and agent.total_steps == 0
