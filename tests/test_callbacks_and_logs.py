"""Logs keep every metric and carry on across a resume; callbacks are checked before training starts."""

import gymnasium as gym
import keras
import numpy as np
import pytest
from gymnasium import spaces

import tfpg
from tfpg.callbacks import CSVLogger, Evaluation

from helpers import read_csv


class GrowingRewardEnv(gym.Env):
    """Two-step episodes; every step of the k-th episode since the env was made pays k, so its return is 2k."""

    def __init__(self):
        self.observation_space = spaces.Box(-np.inf, np.inf, (1,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.episode = -1
        self.step_in_episode = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode += 1
        self.step_in_episode = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.step_in_episode += 1
        return np.zeros(1, np.float32), float(self.episode), self.step_in_episode == 2, False, {}


def test_the_episode_return_window_is_checkpointed_so_a_resumed_run_logs_no_false_dip(tmp_path):
    agent = tfpg.A2C(seed=0, rollout_steps=4)
    agent.fit(GrowingRewardEnv(), steps=8, verbose=0)  # episodes 0..3: returns 0, 2, 4, 6
    assert agent.history.history["episode_return"][-1] == pytest.approx(3.0)
    agent.save(str(tmp_path))
    resumed = tfpg.load(str(tmp_path))
    assert resumed.episode_window.episodes() == [(0.0, 2.0), (2.0, 2.0), (4.0, 2.0), (6.0, 2.0)]
    resumed.fit(GrowingRewardEnv(), steps=4, verbose=0)  # a new env: episodes 0, 1 again, returns 0 and 2
    assert resumed.history.history["episode_return"] == [pytest.approx((0 + 2 + 4 + 6 + 0 + 2) / 6)]


def test_the_window_keeps_the_newest_hundred_episodes():
    agent = tfpg.A2C(seed=0, rollout_steps=4)
    agent.build(GrowingRewardEnv().observation_space, GrowingRewardEnv().action_space)
    agent.episode_window.add(np.arange(150.0), np.ones(150))
    assert [r for r, _ in agent.episode_window.episodes()] == list(np.arange(50.0, 150.0))


def test_a_metric_that_appears_later_gets_a_column_and_earlier_rows_leave_it_empty(tmp_path):
    path = tmp_path / "progress.csv"
    agent = tfpg.A2C(seed=0, rollout_steps=4)
    agent.fit(GrowingRewardEnv(), steps=8, verbose=0, callbacks=[CSVLogger(str(path))])
    assert "eval_mean_return" not in read_csv(path)[0]
    evaluation = Evaluation(GrowingRewardEnv(), every=2, episodes=1)
    agent.fit(GrowingRewardEnv(), steps=16, verbose=0, callbacks=[evaluation, CSVLogger(str(path))])
    rows = read_csv(path)
    assert [int(r["iteration"]) for r in rows] == list(range(6))
    logged = [r["eval_mean_return"] for r in rows]
    # iterations 3 and 5 end an evaluation period; the run's first rows predate the column
    assert [value == "" for value in logged] == [True, True, True, False, True, False]
    assert [float(logged[3]), float(logged[5])] == agent.history.history["eval_mean_return"]
    assert all(r["episode_return"] != "" for r in rows)


@pytest.mark.parametrize("make, message", [
    (lambda: Evaluation("CartPole-v1", every=0), "Evaluation every must be a positive integer"),
    (lambda: Evaluation("CartPole-v1", episodes=-1), "Evaluation episodes must be a positive integer"),
    (lambda: Evaluation("CartPole-v1", stop_at=float("nan")), "stop_at must be a finite number"),
    (lambda: tfpg.callbacks.Checkpoint("d", every="3"), "Checkpoint every"),
    (lambda: tfpg.callbacks.Checkpoint("d", seconds=float("inf")), "seconds=inf must be a positive finite"),
])
def test_callback_arguments_are_checked_when_the_callback_is_made(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("callback, message", [
    (keras.callbacks.ModelCheckpoint("model.keras"), "use tfpg.callbacks.Checkpoint"),
    (object(), "must be keras.callbacks.Callback instances"),
    (keras.callbacks.EarlyStopping(monitor="no_such_metric"), "watches a metric fit does not log"),
])
def test_callbacks_fit_cannot_use_are_refused_before_any_callback_runs(tmp_path, callback, message):
    agent = tfpg.A2C(seed=0, rollout_steps=4)
    log = CSVLogger(str(tmp_path / "progress.csv"))
    with pytest.raises(ValueError, match=message):
        agent.fit(GrowingRewardEnv(), steps=8, verbose=0, callbacks=[callback, log])
    assert not (tmp_path / "progress.csv").exists()


def test_early_stopping_on_an_evaluation_metric_is_accepted_and_stops(tmp_path):
    evaluation = Evaluation(GrowingRewardEnv(), every=1, episodes=1)
    stopping = keras.callbacks.EarlyStopping(monitor="eval_mean_return", patience=0, mode="min")
    agent = tfpg.A2C(seed=0, rollout_steps=4)
    agent.fit(GrowingRewardEnv(), steps=400, verbose=0, callbacks=[evaluation, stopping])
    # each evaluation reuses the same env object, whose episodes pay more each time: in "min" mode the
    # second evaluation is no improvement, so training stops at the second iteration
    assert agent.iterations == 2
