"""tfpg: on-policy policy-gradient agents in TensorFlow 2, Keras 3 and TensorFlow Probability.

    import tfpg
    agent = tfpg.A2C(seed=0)
    history = agent.fit("CartPole-v1", steps=200_000, num_envs=8)
    agent.export("policy")
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter

import importlib  # noqa: E402

from tfpg.native_output import held_back  # noqa: E402

with held_back():  # the notices TensorFlow's libraries print to stderr as they load (see tfpg.native_output)
    for _library in ("tensorflow", "tensorflow_probability"):
        importlib.import_module(_library)
    # Finding the devices loads the CUDA driver, which prints `failed call to cuInit` on a machine without a
    # GPU; listing the physical devices does so without creating the logical ones, so GPUs stay configurable.
    importlib.import_module("tensorflow").config.list_physical_devices()

from tfpg.native_output import hide_checkpoint_timing  # noqa: E402

hide_checkpoint_timing()
from tfpg import callbacks, envs, optimizers  # noqa: E402
from tfpg.agent import OnPolicyAgent  # noqa: E402
from tfpg.algorithms import A2C, ACKTR, ALGORITHMS, NPG, PPO, REINFORCE, TRPO  # noqa: E402
from tfpg.errors import EnvError, NonFiniteError  # noqa: E402
from tfpg.image_encoder import image_encoder  # noqa: E402
from tfpg.loading import load  # noqa: E402
from tfpg.network_factories import register_network  # noqa: E402

register_network("cnn", image_encoder)  # tfpg's image encoder by name (the default for image observations)
from tfpg.transitions import Rollout  # noqa: E402

from tfpg.version import __version__  # noqa: E402

__all__ = ["A2C", "ACKTR", "ALGORITHMS", "EnvError", "NPG", "NonFiniteError", "OnPolicyAgent", "PPO", "REINFORCE",
           "Rollout", "TRPO", "callbacks", "envs", "load", "optimizers", "register_network"]
