"""REINFORCE: Monte-Carlo policy gradient with an optional learned baseline."""

from __future__ import annotations

import dataclasses

import numpy as np

from tfpg.algorithms.a2c import A2C, A2CConfig
from tfpg.config import hparam
from tfpg.returns import reward_to_go


@dataclasses.dataclass
class REINFORCEConfig(A2CConfig):
    """REINFORCE hyperparameters (defaults: long batches of whole episodes)."""

    rollout_steps: int = hparam(1000, "Environment steps per env copy in each batch.", low=1)
    learning_rate: float = hparam(3e-3, "Adam learning rate.", low=0.0, low_open=True)
    normalize_advantages: bool = hparam(True, "Standardise advantages within each batch.")
    baseline: bool = hparam(True, "Subtract a learned state-value baseline from the returns.")


class REINFORCE(A2C):
    """Monte-Carlo policy gradient (Williams, 1992).

    g = E[∇ log π(a_t|s_t) (G_t − b(s_t))] with the discounted reward-to-go
    G_t = Σ_k γ^k r_{t+k} of the transition's own episode and, with
    `baseline=True`, b = V(s) fitted to G by regression in the same step
    (without a baseline V is still fitted, for the logs, but never used).
    Only transitions whose episode ends inside the batch are used (a time
    limit bootstraps with the baseline's value of the final observation, or 0
    without a baseline); the unfinished tail of each env copy is masked out.
    """

    name = "reinforce"
    config_class = REINFORCEConfig

    def _estimate_advantages(self, rewards, values, next_values, terminated, truncated):
        returns, complete = reward_to_go(
            rewards, terminated, truncated, self.config.gamma,
            bootstrap_values=next_values if self.config.baseline else None,
        )
        advantages = returns - values if self.config.baseline else returns
        return advantages, returns, complete.astype(np.float32)
