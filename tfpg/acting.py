"""Acting in env copies during collection, with one random stream per env copy.

A batch starts from one seed drawn from the agent's checkpointed generator. With
the NumPy mirror of tfpg's MLP policies, env copy i (its index among all the
run's copies, in whichever process it steps) draws its action noise from its own
stream `SeedSequence(seed, spawn_key=(i,))`, and the mirror computes every row
independently of the others. So a batch does not depend on how the copies are
split between processes: K workers of M copies act exactly as one vector env of
K×M copies. tfpg's recurrent policies act through one compiled TensorFlow call
per vector step, with the action noise of each copy drawn from that copy's stream
in the same way (`tfpg.action_noise`), so their batches do not depend on the
split either (a user's recurrent policy is seeded as other policies are, below);
a recurrent policy keeps each copy's state between steps and batches, zeroed at every
episode start. Other policies act through one compiled TensorFlow call per
vector step, seeded per step from the stream of the first copy they step; their
batches are reproducible for a given split, and the same in distribution for
any split.
"""

from __future__ import annotations

from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from tfpg.action_masks import check_some_allowed
from tfpg.action_noise import draw_noise, model_noise, noise_shape, sample_with_noise
from tfpg.compiled import compiled
from tfpg.errors import EnvError
from tfpg.native_output import held_back
from tfpg.networks import PolicyNetwork
from tfpg.numpy_policy import NumpyPolicy, mirrors
from tfpg.observations import ObservationSpec
from tfpg.recurrent import sequence_input
from tfpg.sequences import input_signature


def copy_stream(seed: np.ndarray, copy: int) -> np.random.Generator:
    """The random stream of env copy `copy` in the batch seeded by `seed` (a sequence of unsigned ints)."""
    return np.random.default_rng(np.random.SeedSequence([int(x) for x in np.atleast_1d(seed)], spawn_key=(copy,)))


class ActingPolicy:
    """Samples a policy's actions for env stepping.

    Args:
        policy: the acting `keras.Model` (observations → `tfd.Distribution`).
        observation: its observation space description.
        action: its action space description.
        state_size: S, the width of a recurrent policy's state (`tfpg.recurrent`); None for a feed-forward one.
        action_mask: the Dict observation entry holding the action mask (`tfpg.action_masks`), or None; a step
            whose mask allows no action is an `EnvError` naming the env copy.
    """

    def __init__(self, policy: keras.Model, observation: dict, action: dict, state_size: int | None = None,
                 action_mask: str | None = None):
        self.policy = policy
        self.action = action
        self.action_mask = action_mask
        self.observation_spec = ObservationSpec(observation)
        self.state_size = state_size
        self.states: np.ndarray | None = None  # a recurrent policy's state of each env copy it steps, [N, S]
        self.mirror = NumpyPolicy(policy, observation, action) if mirrors(policy) else None
        example = self.observation_spec.example_batch(1)
        if state_size is None:
            self._sample = compiled(
                self._sample_tensorflow,
                input_signature=[self.observation_spec.tensor_specs(), tf.TensorSpec([2], tf.int32)],
            ).get_concrete_function()
        else:
            # tfpg's own heads sample from noise drawn per copy; a user's distribution samples with a seed
            self.copy_noise = isinstance(policy, PolicyNetwork)
            randomness = tf.TensorSpec([None, *noise_shape(action)], tf.float32) if self.copy_noise \
                else tf.TensorSpec([2], tf.int32)
            self._sample = compiled(
                self._sample_recurrent,
                input_signature=[input_signature(self.observation_spec, {"policy": state_size}), randomness],
            ).get_concrete_function()
        with held_back():  # the first run optimises the graph, when oneDNN prints its notices (tfpg.native_output)
            if state_size is None:
                self._sample(example, tf.constant([0, 0], tf.int32))
            else:
                self._sample(sequence_input(example, tf.ones([1]), {"policy": tf.zeros([1, state_size])}),
                             tf.zeros([1, *noise_shape(action)]) if self.copy_noise else tf.constant([0, 0]))

    def _sample_tensorflow(self, observations, seed):
        return self.policy(observations).sample(seed=seed)

    def _sample_recurrent(self, inputs, randomness):
        distribution, _, final = self.policy.sequence(inputs)
        if self.copy_noise:
            return sample_with_noise(distribution, randomness, self.action), final
        return distribution.sample(seed=randomness), final

    def weights(self) -> list[np.ndarray]:
        """The policy's weights, observation statistics included (`keras.Model.get_weights`)."""
        return self.policy.get_weights()

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Sets the weights of a policy built from the same description (see `weights`)."""
        self.policy.set_weights(weights)

    def sampler(self, seed: np.ndarray, steps: int, copies: range) -> Callable[..., np.ndarray]:
        """A function for `steps` calls, mapping the observations of `copies` (and, for a recurrent policy,
        which of them start an episode, `[N]` bools) to flat sampled actions `[N, A]`.

        Args:
            seed: the batch's seed (unsigned ints).
            steps: T, the number of vector steps the function serves.
            copies: the global indices of the env copies whose rows it receives, in order.
        """
        if self.state_size is not None:
            act = self._recurrent_sampler(seed, steps, copies)
        elif self.mirror is not None:
            act = self._mirror_sampler(seed, steps, copies)
        else:
            act = self._tensorflow_sampler(seed, steps, copies)
        discrete = [(index, leaf) for index, leaf in enumerate(self.observation_spec.leaves)
                    if leaf.description["type"] == "Discrete"]
        if not discrete and self.action_mask is None:
            return act
        action, mask_key = self.action, self.action_mask
        step = iter(range(steps))

        def checked(observations, *episode_starts):
            flat = self.observation_spec.flatten(observations)
            for index, leaf in discrete:
                _check_in_space(flat[index], leaf, copies)
            at = next(step)
            if mask_key is not None:
                check_some_allowed(observations[mask_key], action,
                                   lambda row: f"env copy {copies[row]} at step {at} of the batch")
            return act(observations, *episode_starts)

        return checked

    def _mirror_sampler(self, seed: np.ndarray, steps: int, copies: range) -> Callable[[np.ndarray], np.ndarray]:
        self.mirror.refresh()
        noise = np.stack([self.mirror.draw_noise(copy_stream(seed, copy), steps) for copy in copies], axis=1)
        steps_noise = iter(noise)
        mirror = self.mirror
        return lambda observations, episode_starts=None: mirror.sample(observations, next(steps_noise))

    def _tensorflow_sampler(self, seed: np.ndarray, steps: int, copies: range) -> Callable[[np.ndarray], np.ndarray]:
        seeds = iter(_step_seeds(seed, steps, copies))
        model_input = self.observation_spec.model_input
        sample = self._sample
        # One compiled call per vector step for all copies; the concrete function skips tf.function's
        # argument binding.
        return lambda observations, episode_starts=None: sample(model_input(observations),
                                                                tf.constant(next(seeds))).numpy()

    def _recurrent_sampler(self, seed: np.ndarray, steps: int, copies: range) -> Callable[..., np.ndarray]:
        if self.copy_noise:
            randomness = iter(np.stack([model_noise(draw_noise(copy_stream(seed, copy), steps, self.action),
                                                    self.action) for copy in copies], axis=1))
        else:
            randomness = iter(_step_seeds(seed, steps, copies))
        if self.states is None or len(self.states) != len(copies):
            self.states = np.zeros((len(copies), self.state_size), np.float32)  # every copy starts an episode

        def act(observations, episode_starts):
            inputs = sequence_input(self.observation_spec.model_input(observations),
                                    tf.constant(np.asarray(episode_starts, np.float32)),
                                    {"policy": tf.constant(self.states)})
            actions, states = self._sample(inputs, tf.constant(next(randomness)))
            self.states = states.numpy()
            return actions.numpy()

        return act


def _step_seeds(seed: np.ndarray, steps: int, copies: range) -> np.ndarray:
    """One stateless-op seed pair per vector step of a batch, [steps, 2] int32, from the first copy's stream."""
    return copy_stream(seed, copies.start).integers(0, 2**31 - 1, size=(steps, 2), dtype=np.int32)


def _check_in_space(values: np.ndarray, leaf, copies: range) -> None:
    """Raises an `EnvError` naming the copy whose Discrete observation is outside its declared space.

    One-hot encoding would otherwise index out of range, or (in TensorFlow) silently give a zero vector."""
    start, n = leaf.description["start"], leaf.description["n"]
    values = np.reshape(values, -1)
    outside = (values < start) | (values >= start + n)
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        where = f" (entry {leaf.path!r})" if leaf.path else ""
        raise EnvError(f"Env copy {copies[row]} returned the observation {values[row].item()!r}{where}, outside its declared "
                       f"observation space Discrete({n}, start={start}). Fix the env or the space it declares.")
