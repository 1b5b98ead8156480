"""Real Atari (ale-py, ROMs included) through the vector-env factory, the agent and both launchers."""

import json

import numpy as np

import tfpg
from helpers import run
from tfpg.envs import describe_env, make_vector_env
from tfpg.image_encoder import ImageEncoder, is_image


def test_atari_ids_get_the_standard_preprocessing_and_the_nature_cnn():
    env = make_vector_env("ALE/Pong-v5", num_envs=2)
    try:
        observation, action = describe_env(env)
        assert observation["shape"] == [4, 84, 84] and observation["dtype"] == "uint8" and is_image(observation)
        assert action == {"type": "Discrete", "n": 6, "start": 0}
        agent = tfpg.PPO(seed=0, rollout_steps=32, minibatch_size=32, epochs=1)
        rollout = agent.collect(env, 64)
        assert rollout.observations.shape == (32, 2, 4, 84, 84) and rollout.observations.dtype == np.uint8
        # frames stack oldest first: each step's newest frame is the next step's second newest
        np.testing.assert_array_equal(rollout.observations[1:, :, 2], rollout.observations[:-1, :, 3])
        assert isinstance(agent.policy.features, ImageEncoder)
        assert len(agent.policy.features.convolutions) == 3
        agent.train_on_batch(rollout)
    finally:
        env.close()


def test_the_launchers_train_export_and_evaluate_an_atari_game(tmp_path):
    logdir = str(tmp_path / "pong")
    trained = run(["-m", "tfpg.train", "--algo=ppo", "--env=ALE/Pong-v5", "--steps=128", "--num_envs=2",
                   "--rollout_steps=32", "--minibatch_size=32", "--epochs=1", "--eval_episodes=1", "--verbose=0",
                   f"--logdir={logdir}"], timeout=600)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "A.L.E" not in trained.stderr  # the emulator's banner is held back like TensorFlow's lines
    with open(f"{logdir}/evaluation.json") as file:
        assert -21 <= json.load(file)["mean_return"] <= 21
    evaluated = run(["-m", "tfpg.evaluate", f"--policy={logdir}/policy", "--env=ALE/Pong-v5", "--episodes=1"],
                    timeout=600)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "ALE/Pong-v5: mean return" in evaluated.stdout


def test_fire_is_pressed_at_the_start_of_every_life_so_a_policy_that_never_fires_still_ends_its_episodes():
    from tfpg.atari import FireOnLifeStart, make_atari

    breakout = make_atari("ALE/Breakout-v5")
    assert FireOnLifeStart.applies(breakout)
    pressed = []
    fire = breakout.env  # FireOnLifeStart, under the frame stack
    assert isinstance(fire, FireOnLifeStart)
    inner_step = fire.env.step
    fire.env.step = lambda action: (pressed.append(action), inner_step(action))[1]
    breakout.reset(seed=0)
    steps, done, info = 0, False, {}
    while not done:
        _, _, terminated, truncated, info = breakout.step(0)  # NOOP only: the ball is launched by the wrapper
        steps += 1
        done = terminated or truncated
    # Five lives, each started by one FIRE; without it the episode would run to the 27,000-step limit.
    assert terminated and not truncated and info["lives"] == 0 and steps < 2000
    assert pressed.count(FireOnLifeStart.FIRE) == 5
    assert not FireOnLifeStart.applies(make_atari("ALE/MsPacman-v5"))  # no FIRE among its actions
