"""tfpg: on-policy policy-gradient agents in TensorFlow 2, Keras 3 and TensorFlow Probability.

    import tfpg
    agent = tfpg.A2C(seed=0)
    history = agent.fit("CartPole-v1", steps=200_000, num_envs=8)
    agent.export("policy")
"""

from tfpg import callbacks
from tfpg.agent import OnPolicyAgent
from tfpg.algorithms import A2C, ALGORITHMS, REINFORCE
from tfpg.checkpoint import load
from tfpg.rollout import Rollout

__version__ = "0.1.0"

__all__ = ["A2C", "ALGORITHMS", "OnPolicyAgent", "REINFORCE", "Rollout", "callbacks", "load"]
