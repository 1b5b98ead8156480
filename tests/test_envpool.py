"""The EnvPool backend: same-step autoreset as Gymnasium's, the same MuJoCo task, and training through it."""

import os

import gymnasium as gym
import numpy as np
import pytest

import tfpg
from tfpg.envs import make_vector_env

from helpers import read_csv, run

pytest.importorskip("envpool")
from tfpg.envpool_backend import EnvPoolVectorEnv  # noqa: E402

STEPS, LIMIT = 23, 5


def _gymnasium(copies):
    return gym.vector.SyncVectorEnv([lambda: gym.make("Hopper-v5", max_episode_steps=LIMIT)] * copies,
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def _run(env, copies):
    """Steps with zero torques (Hopper stays healthy for 5 steps); records what a collector sees."""
    first, _ = env.reset(seed=0)
    record = {"first": first, "rewards": [], "terminated": [], "truncated": [], "finals": [], "successors": []}
    for _ in range(STEPS):
        observations, rewards, terminated, truncated, infos = env.step(np.zeros((copies, 3)))
        record["rewards"].append(rewards)
        record["terminated"].append(terminated)
        record["truncated"].append(truncated)
        for index in np.flatnonzero(terminated | truncated):
            record["finals"].append(infos["final_obs"][index])
            record["successors"].append(observations[index])
    return {key: np.array(value) for key, value in record.items()}


def test_envpool_resets_on_the_step_that_ends_an_episode_as_gymnasium_same_step_does():
    envpool_run = _run(EnvPoolVectorEnv("Hopper-v5", 2, max_episode_steps=LIMIT), 2)
    gymnasium_run = _run(_gymnasium(2), 2)
    # Episodes of exactly LIMIT real steps, ended by truncation, in both: EnvPool's own mode would take a
    # wasted reset step after each (reward 0), so its episodes would end at steps 5, 11, 17, 23.
    ends = [t for t in range(STEPS) if (t + 1) % LIMIT == 0]
    for run in (envpool_run, gymnasium_run):
        assert not run["terminated"].any()
        np.testing.assert_array_equal(np.flatnonzero(run["truncated"][:, 0]), ends)
        np.testing.assert_array_equal(run["truncated"][:, 0], run["truncated"][:, 1])
        assert np.all(np.abs(run["rewards"] - 1.0) < 0.1)  # the healthy reward of a real step, never 0
    # The final observation is the state after LIMIT steps; the successor is a fresh start near the
    # initial pose (reset noise 0.005), like the first observation of the run.
    for run in (envpool_run, gymnasium_run):
        initial = run["first"][0]
        assert np.all(np.abs(run["successors"] - initial).max(axis=1) < 0.05)
        assert np.all(np.abs(run["finals"] - initial).max(axis=1) > 0.05)
    # The same task: same spaces, the same first observations up to the reset noise, the same rewards.
    assert envpool_run["first"].shape == gymnasium_run["first"].shape
    np.testing.assert_allclose(envpool_run["first"], gymnasium_run["first"], atol=0.03)
    np.testing.assert_allclose(envpool_run["rewards"][:LIMIT], gymnasium_run["rewards"][:LIMIT], atol=0.05)
    np.testing.assert_allclose(envpool_run["finals"], gymnasium_run["finals"], atol=0.2)


def test_a_reset_mask_resets_only_the_marked_copies():
    env = EnvPoolVectorEnv("Hopper-v5", 3, max_episode_steps=100)
    env.reset(seed=1)
    for _ in range(10):
        moved, *_ = env.step(np.full((3, 3), 0.5))
    reset, _ = env.reset(options={"reset_mask": np.array([False, True, False])})
    after, *_ = env.step(np.zeros((3, 3)))
    assert np.all(reset[[0, 2]] == 0) and np.abs(reset[1] - moved[1]).max() > 0.05
    assert np.abs(after[0] - moved[0]).max() < np.abs(after[1] - moved[1]).max()


def test_envpool_declares_the_spaces_of_the_gymnasium_task():
    envpool_env, gymnasium_env = EnvPoolVectorEnv("Hopper-v5", 2), gym.make("Hopper-v5")
    assert envpool_env.single_action_space == gymnasium_env.action_space
    assert envpool_env.single_observation_space == gymnasium_env.observation_space
    # EnvPool itself declares float64 torques; they are converted back when stepping.
    assert envpool_env._pool.action_space.dtype == np.float64
    envpool_env.reset(seed=0)
    envpool_env.step(np.zeros((2, 3), np.float32))


def test_an_agent_trained_through_envpool_acts_evaluates_and_exports_on_the_gymnasium_id(tmp_path):
    agent = tfpg.PPO(seed=0, rollout_steps=64, minibatch_size=64, epochs=1)
    history = agent.fit("Hopper-v5", steps=2 * 256, num_envs=4, vector_env="envpool", verbose=0)
    assert agent.total_steps == 512 and len(history.history["episode_return"]) == 2
    assert isinstance(agent._sources.current.env, EnvPoolVectorEnv)
    gymnasium_env = gym.make("Hopper-v5", max_episode_steps=20)
    observation, _ = gymnasium_env.reset(seed=0)
    action = agent.predict(observation[None], deterministic=True)[0]
    assert gymnasium_env.action_space.contains(action)
    assert agent.evaluate(gymnasium_env, episodes=1)["episodes"] == 1
    agent.export(str(tmp_path / "policy"))
    agent.save(str(tmp_path / "checkpoints"))
    agent.close()
    loaded = tfpg.load(str(tmp_path / "checkpoints"))
    assert loaded.evaluate(gym.make("Hopper-v5", max_episode_steps=20), episodes=1)["episodes"] == 1
    result = run(["-m", "tfpg.evaluate", f"--policy={tmp_path / 'policy'}", "--env=Hopper-v5", "--episodes=1"])
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_launcher_trains_mujoco_through_envpool(tmp_path):
    result = run(["-m", "tfpg.train", "--algo=ppo", "--env=Hopper-v5", "--vector_env=envpool", "--num_envs=8",
                  "--steps=4096", "--rollout_steps=256", "--eval_episodes=1", f"--logdir={tmp_path / 'D'}"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert os.path.isfile(tmp_path / "D" / "policy" / "saved_model.pb")
    assert int(read_csv(tmp_path / "D" / "progress.csv")[-1]["total_steps"]) == 4096


def test_envpool_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="no task 'CartPole-v9'"):
        make_vector_env("CartPole-v9", 2, backend="envpool")
    with pytest.raises(ValueError, match="drop asynchronous"):
        make_vector_env("Hopper-v5", 2, asynchronous=True, backend="envpool")
    with pytest.raises(ValueError, match="from a Gymnasium id"):
        make_vector_env(gym.make("Hopper-v5"), 1, backend="envpool")
    with pytest.raises(ValueError, match="Unknown vector env backend 'bogus'"):
        tfpg.PPO().fit("Hopper-v5", steps=64, vector_env="bogus", verbose=0)
