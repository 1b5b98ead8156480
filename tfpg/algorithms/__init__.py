"""The algorithms, each an `OnPolicyAgent` with its own update rule."""

from tfpg.algorithms.a2c import A2C, A2CConfig
from tfpg.algorithms.reinforce import REINFORCE, REINFORCEConfig

ALGORITHMS = {cls.name: cls for cls in (REINFORCE, A2C)}

__all__ = ["A2C", "A2CConfig", "REINFORCE", "REINFORCEConfig", "ALGORITHMS"]
