"""The algorithms, each an `OnPolicyAgent` with its own update rule."""

from tfpg.algorithms.a2c import A2C, A2CConfig
from tfpg.algorithms.acktr import ACKTR, ACKTRConfig
from tfpg.algorithms.npg import NPG, NPGConfig
from tfpg.algorithms.ppo import PPO, PPOConfig
from tfpg.algorithms.reinforce import REINFORCE, REINFORCEConfig
from tfpg.algorithms.trpo import TRPO, TRPOConfig

ALGORITHMS = {cls.name: cls for cls in (REINFORCE, A2C, NPG, TRPO, PPO, ACKTR)}

__all__ = ["A2C", "A2CConfig", "ACKTR", "ACKTRConfig", "NPG", "NPGConfig", "PPO", "PPOConfig", "REINFORCE", "REINFORCEConfig",
           "TRPO", "TRPOConfig", "ALGORITHMS"]
