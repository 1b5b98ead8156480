"""Resume determinism: N steps in one run equal N/2 + save/load + N/2 when episodes end at batch ends."""

import gymnasium as gym
import numpy as np
import pytest

import tfpg
from tests.conftest import CounterEnv


def _state(agent):
    """Every variable a checkpoint holds (networks, optimizer state, statistics, RNG, counters)."""
    variables = [*agent._training_state(), agent.rng.state, *agent.observation_normalizer.variables,
                 *agent.reward_scaler.statistics.variables, agent.total_steps_variable,
                 agent.iterations_variable]
    return [(v.name, v.numpy()) for v in variables]


def _episodes_of_four():
    # A deterministic env whose 4-step episodes end exactly at the end of every 8-step batch, so the
    # envs a resumed run resets start where the uninterrupted run's episodes start anyway.
    return gym.wrappers.TimeLimit(CounterEnv(action_space=gym.spaces.Box(-1.0, 1.0, (2,), np.float32)), 4)


@pytest.mark.parametrize("algorithm, hyperparameters", [
    # PPO's linear schedule anneals to each fit's target; a run split over fit calls sets one horizon
    ("ppo", {"epochs": 2, "minibatch_size": 4, "learning_rate_decay_steps": 48}),
    ("trpo", {"value_function": "regression", "value_epochs": 2, "value_minibatch_size": 4}),
    ("npg", {}),
    ("acktr", {"kfac_statistics_every": 1}),
    ("acktr", {}),  # statistics on every 2nd update: resumed between a gathering update and the next
])
def test_half_plus_resume_plus_half_equals_one_run(tmp_path, algorithm, hyperparameters):
    config = dict(rollout_steps=8, scale_rewards=True, **hyperparameters)
    straight = tfpg.ALGORITHMS[algorithm](seed=3, **config)
    straight.fit(_episodes_of_four(), steps=48, verbose=0)

    first_half = tfpg.ALGORITHMS[algorithm](seed=3, **config)
    first_half.fit(_episodes_of_four(), steps=24, verbose=0)
    first_half.save(str(tmp_path))
    resumed = tfpg.load(str(tmp_path))
    resumed.fit(_episodes_of_four(), steps=24, verbose=0)

    assert (resumed.total_steps, resumed.iterations) == (straight.total_steps, straight.iterations) == (48, 6)
    expected, actual = _state(straight), _state(resumed)
    assert len(actual) == len(expected)
    for (name, value), (_, expected_value) in zip(actual, expected):
        np.testing.assert_array_equal(value, expected_value, err_msg=name)
