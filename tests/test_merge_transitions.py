"""Joining the transitions of several vector envs as those of one vector env of all their copies."""

import numpy as np

from tfpg.reward_scaling import RewardScaler
from tfpg.transitions import Transitions, merge_transitions


def _part(copies, offset, episodes, restarted=None):
    steps = 3
    grid = np.arange(steps * copies, dtype=np.float32).reshape(steps, copies) + offset
    return Transitions(
        observations={"x": grid[..., None], "y": -grid}, actions=grid[..., None], rewards=grid,
        terminated=grid > offset + 4, truncated=np.zeros((steps, copies), bool),
        final_observations={"x": grid[..., None] + 0.5, "y": -grid - 0.5},
        last_observations={"x": grid[-1][..., None], "y": -grid[-1]},
        episode_returns=[r for _, r in episodes], episode_lengths=[int(r) for _, r in episodes], seconds=offset,
        valid=np.ones((steps, copies), bool), skipped=int(offset), episode_steps=[t for t, _ in episodes],
        restarted=restarted, episode_starts=grid % 3 == 0)


def test_parts_join_along_the_copy_axis_and_episodes_in_step_then_copy_order():
    first = _part(2, 0.0, [(0, 1.0), (2, 2.0)])
    second = _part(1, 100.0, [(0, 3.0), (1, 4.0)], restarted=np.array([True]))
    merged = merge_transitions([first, second])
    np.testing.assert_array_equal(merged.rewards, np.concatenate([first.rewards, second.rewards], axis=1))
    assert merged.observations["x"].shape == (3, 3, 1) and merged.last_observations["y"].shape == (3,)
    np.testing.assert_array_equal(merged.final_observations["y"][:, 2], second.final_observations["y"][:, 0])
    # one vector env records episodes step by step, and within a step by copy index
    assert merged.episode_returns == [1.0, 3.0, 4.0, 2.0] and merged.episode_steps == [0, 0, 1, 2]
    assert merged.episode_lengths == [1, 3, 4, 2]
    assert merged.seconds == 100.0 and merged.skipped == 100
    np.testing.assert_array_equal(merged.restarted, [False, False, True])
    np.testing.assert_array_equal(merged.episode_starts,
                                  np.concatenate([first.episode_starts, second.episode_starts], axis=1))
    assert merge_transitions([first, _part(1, 50.0, [])]).restarted is None


def test_restarted_copies_start_their_running_return_again():
    scaler = RewardScaler(gamma=0.5)
    scaler.start_episodes(3)
    scaler(np.ones((4, 3), np.float32), np.zeros((4, 3), bool))
    before = scaler.running_return.copy()
    scaler.restart(np.array([False, True, False]))
    np.testing.assert_array_equal(scaler.running_return, [before[0], 0.0, before[2]])
