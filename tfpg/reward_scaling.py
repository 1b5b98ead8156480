"""Reward scaling by the running standard deviation of the discounted return."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfpg.normalization import RunningNormalization


class RewardScaler(tf.Module):
    """Divides rewards by the running std of each env copy's discounted return.

    For every env copy i, R_i ← γ R_i + r_i (reset to 0 after the episode ends);
    the R_i of every step feed running variance statistics σ², and the rewards
    are returned as clip(r / sqrt(σ² + ε), ±10). The statistics are variables
    (checkpointed); the running returns belong to the episodes in progress and
    restart at 0 whenever the envs are reset, as on resume.

    Args:
        gamma: the discount γ of the running return.
    """

    def __init__(self, gamma: float, name: str = "reward_scaler"):
        super().__init__(name=name)
        self.gamma = float(gamma)
        self.statistics = RunningNormalization(1, name="reward_statistics")
        self.running_return = np.zeros(0, np.float64)

    def start_episodes(self, num_envs: int) -> None:
        """Sets the running returns of `num_envs` freshly reset env copies to 0."""
        self.running_return = np.zeros(num_envs, np.float64)

    def restart(self, copies: np.ndarray) -> None:
        """Sets the running returns of the copies marked in the `[N]` mask `copies` (reset envs) to 0."""
        self.running_return = np.where(copies, 0.0, self.running_return)

    def __call__(self, rewards: np.ndarray, dones: np.ndarray) -> np.ndarray:
        """Scales time-major `[T, N]` rewards, updating the statistics with this batch's returns.

        Args:
            rewards: `[T, N]` raw rewards.
            dones: `[T, N]` True where an episode ended at that step.

        Returns:
            `[T, N]` float32 scaled rewards.
        """
        discounted = np.zeros(rewards.shape, np.float64)
        running = self.running_return
        for t in range(rewards.shape[0]):
            running = running * self.gamma + rewards[t]
            discounted[t] = running
            running = np.where(dones[t], 0.0, running)
        self.running_return = running
        self.statistics.update(tf.constant(discounted.reshape(-1, 1)))
        std = float(np.sqrt(self.statistics.variance.numpy()[0] + self.statistics.epsilon))
        return np.clip(rewards / std, -10.0, 10.0).astype(np.float32)
