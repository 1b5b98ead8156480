"""Network factories a user would write, importable by name (`user_networks:...` or `tests.user_networks:...`)."""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


def small_encoder(observation_space):
    """Dense features of the (preprocessed) observations."""
    return keras.Sequential([keras.layers.Dense(32, activation="relu"), keras.layers.Dense(16, activation="tanh")])


class GaussianPolicy(keras.Model):
    """A user's Gaussian policy with a state-independent log-std of its own."""

    def __init__(self, action_size):
        super().__init__()
        self.hidden = keras.layers.Dense(32, activation="tanh")
        self.mean = keras.layers.Dense(action_size)
        self.log_std = self.add_weight(shape=(action_size,), initializer="zeros", name="log_std")

    def call(self, observations):
        return tfd.Independent(tfd.Normal(self.mean(self.hidden(observations)), tf.exp(self.log_std)), 1)


class CategoricalPolicy(keras.Model):
    """A user's categorical policy returning a plain `tfd.Categorical` (batch shape [batch])."""

    def __init__(self, actions):
        super().__init__()
        self.hidden = keras.layers.Dense(32, activation="tanh")
        self.logits = keras.layers.Dense(actions)

    def call(self, observations):
        return tfd.Categorical(logits=self.logits(self.hidden(observations)))


def policy_model(observation_space, action_space):
    """A categorical policy for Discrete actions, a Gaussian one for Box actions."""
    if hasattr(action_space, "n"):
        return CategoricalPolicy(int(action_space.n))
    return GaussianPolicy(int(np.prod(action_space.shape)))


def value_model(observation_space, action_space):
    """A Dense value network with a [batch, 1] output (tfpg squeezes it)."""
    return keras.Sequential([keras.layers.Dense(32, activation="tanh"), keras.layers.Dense(1)])


class GRUPolicy(keras.Model):
    """A user's recurrent categorical policy, written as one step: a GRU cell, then logits."""

    state_size = 16

    def __init__(self, actions):
        super().__init__()
        self.cell = keras.layers.GRUCell(self.state_size)
        self.logits = keras.layers.Dense(actions)

    def call(self, observations, state):
        output, new_state = self.cell(observations, [state])
        return tfd.Categorical(logits=self.logits(output)), new_state[0]


class GRUValue(keras.Model):
    """A user's recurrent value model, one step at a time."""

    state_size = 8

    def __init__(self):
        super().__init__()
        self.cell = keras.layers.GRUCell(self.state_size)
        self.value = keras.layers.Dense(1)

    def call(self, observations, state):
        output, new_state = self.cell(observations, [state])
        return self.value(output), new_state[0]


def recurrent_policy(observation_space, action_space):
    """`GRUPolicy` for Discrete actions."""
    return GRUPolicy(int(action_space.n))


def recurrent_value(observation_space, action_space):
    """`GRUValue`."""
    return GRUValue()
