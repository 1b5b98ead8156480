"""Train with your own Keras networks: an encoder under tfpg's heads, or whole policy and value models.

    python examples/own_networks.py --steps=100000 --out=runs/own_networks

Trains PPO on CartPole-v1 with a custom encoder, then TRPO on Pendulum-v1 with a user's Gaussian
policy and value model, and reloads each from its checkpoint. The factories are registered by name,
so the checkpoints record those names and `tfpg.load` finds the factories again (functions of an
importable module would be recorded as `module:function` without registering).
"""

import os

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from absl import app, flags

import tfpg

flags.DEFINE_integer("steps", 100_000, "Environment steps of each run.")
flags.DEFINE_string("out", "runs/own_networks", "Directory for the checkpoints.")
FLAGS = flags.FLAGS
tfd = tfp.distributions


def encoder(observation_space):
    """Features of the (normalised) observations; tfpg adds hidden_sizes and its heads on top."""
    return keras.Sequential([keras.layers.Dense(64, activation="relu"), keras.layers.Dense(64, activation="relu")])


class GaussianPolicy(keras.Model):
    """Mean from an MLP, a learnable state-independent log-std."""

    def __init__(self, action_size):
        super().__init__()
        self.torso = keras.Sequential([keras.layers.Dense(64, activation="tanh"),
                                       keras.layers.Dense(64, activation="tanh")])
        self.mean = keras.layers.Dense(action_size, kernel_initializer=keras.initializers.Orthogonal(0.01))
        self.log_std = self.add_weight(shape=(action_size,), initializer="zeros", name="log_std")

    def call(self, observations):
        return tfd.Independent(tfd.Normal(self.mean(self.torso(observations)), tf.exp(self.log_std)), 1)


def policy(observation_space, action_space):
    return GaussianPolicy(int(np.prod(action_space.shape)))


def value(observation_space, action_space):
    return keras.Sequential([keras.layers.Dense(64, activation="tanh"), keras.layers.Dense(64, activation="tanh"),
                             keras.layers.Dense(1)])


tfpg.register_network("example_encoder", encoder)
tfpg.register_network("example_policy", policy)
tfpg.register_network("example_value", value)


def main(argv):
    del argv
    runs = [("CartPole-v1", tfpg.PPO(seed=0, encoder="example_encoder", hidden_sizes=())),
            ("Pendulum-v1", tfpg.TRPO(seed=0, policy="example_policy", value="example_value", gamma=0.9))]
    for env_id, agent in runs:
        agent.fit(env_id, steps=FLAGS.steps, verbose=0)
        path = agent.save(os.path.join(FLAGS.out, agent.name, "checkpoints"))
        loaded = tfpg.load(path)
        result = loaded.evaluate(env_id, episodes=5)
        print(f"{agent.name} on {env_id} with {agent.networks.record()}: mean return {result['mean_return']:.1f} "
              f"after {loaded.total_steps} steps (reloaded from {path})")


if __name__ == "__main__":
    app.run(main)
