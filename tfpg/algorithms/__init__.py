"""The algorithms, each an `OnPolicyAgent` with its own update rule."""

from tfpg.algorithms.a2c import A2C, A2CConfig
from tfpg.algorithms.ppo import PPO, PPOConfig
from tfpg.algorithms.reinforce import REINFORCE, REINFORCEConfig

ALGORITHMS = {cls.name: cls for cls in (REINFORCE, A2C, PPO)}

__all__ = ["A2C", "A2CConfig", "PPO", "PPOConfig", "REINFORCE", "REINFORCEConfig", "ALGORITHMS"]
