"""One batch of experience: stepping a rollout source, then values, reward scaling and advantages."""

from __future__ import annotations

from typing import Callable

import numpy as np
import tensorflow as tf

from tfpg.acting import ActingPolicy
from tfpg.observations import ObservationSpec, batch_size, map_arrays
from tfpg.recurrent import sequence_input
from tfpg.returns import next_state_values
from tfpg.reward_scaling import RewardScaler
from tfpg.transitions import Rollout, Transitions


def flat_steps(array):
    """`[T, N, ...]` arrays (a nest of them for Dict and Tuple observations) as `[T·N, ...]`."""
    return map_arrays(lambda leaf: leaf.reshape((-1, *leaf.shape[2:])), array)


class BatchCollector:
    """Turns the steps of a rollout source into a `Rollout` evaluated by the agent's current models.

    Args:
        observation_spec: the observations' structure (converts them to model inputs).
        action_dtype: the dtype of the policy's actions.
        acting: the policy the envs are stepped with.
        update_statistics: `fn(model_input)`, adds a batch's observations to the running statistics.
        log_probs_and_values: `fn(model_input, actions) -> (log_probs, values)` tensors.
        values: `fn(model_input) -> values` tensor.
        reward_scaler: the running reward scaler, or None to keep the raw rewards.
        estimate_advantages: `fn(rewards, values, next_values, terminated, truncated)
            -> (advantages, returns, mask)`, all `[T, N]` (the algorithm's estimator).
        state_sizes: for recurrent models, the width of each model role's state (`tfpg.recurrent`); the
            models then take sequence inputs, `log_probs_and_values` also returns the state each step
            received and the state after the last step (by role), and the collector carries the latter
            from batch to batch.
    """

    def __init__(self, observation_spec: ObservationSpec, action_dtype: tf.DType, acting: ActingPolicy,
                 update_statistics: Callable, log_probs_and_values: Callable, values: Callable,
                 reward_scaler: RewardScaler | None, estimate_advantages: Callable, state_sizes: dict | None = None):
        self.observation_spec = observation_spec
        self.action_dtype = action_dtype
        self.acting = acting
        self.update_statistics = update_statistics
        self.log_probs_and_values = log_probs_and_values
        self.values = values
        self.reward_scaler = reward_scaler
        self.estimate_advantages = estimate_advantages
        self.state_sizes = state_sizes or {}
        self.states: dict | None = None  # each role's state after the last batch evaluated, [N, S]

    def collect(self, source, steps_per_env: int, seed: np.ndarray, total_steps: int) -> Rollout:
        """Steps `source` for `steps_per_env` steps of each copy and evaluates the batch.

        The observation statistics are updated with the batch's observations first, so that the
        log-probabilities and values are those of the policy the next update starts from.

        Args:
            source: a rollout source (`tfpg.rollout_sources`).
            steps_per_env: steps of each env copy.
            seed: the batch's acting seed.
            total_steps: env steps collected before this batch.
        """
        transitions = source.collect_batch(steps_per_env, self.acting, seed, total_steps)
        if transitions.restarted is not None and self.reward_scaler is not None:
            self.reward_scaler.restart(transitions.restarted)
        self.update_statistics(self.observation_spec.model_input(flat_steps(transitions.observations)))
        return self.evaluate(transitions)

    def values_numpy(self, observations, episode_starts: np.ndarray | None = None,
                     states: dict | None = None) -> np.ndarray:
        """V of a flat batch of observations (for recurrent models, one step from `states` with the given
        episode starts), as NumPy."""
        if batch_size(observations) == 0:
            return np.zeros((0,), np.float32)
        inputs = self.observation_spec.model_input(observations)
        if self.state_sizes:
            inputs = sequence_input(inputs, tf.constant(episode_starts, tf.float32),
                                    {role: tf.constant(state) for role, state in states.items()})
        return self.values(inputs).numpy()

    def _outputs(self, transitions: Transitions, dones: np.ndarray) -> tuple:
        """`(log_probs, values, final_values, last_values, None)` of a feed-forward policy, `[T, N]` but the last
        values `[N]`; the final values are V(s_{t+1}) where an episode ended (0 elsewhere)."""
        shape = transitions.rewards.shape
        observations = self.observation_spec.model_input(flat_steps(transitions.observations))
        actions = tf.convert_to_tensor(flat_steps(transitions.actions), self.action_dtype)
        log_probs, values = self.log_probs_and_values(observations, actions)
        final_values = np.zeros(shape, np.float32)
        final_values[dones] = self.values_numpy(map_arrays(lambda leaf: leaf[dones], transitions.final_observations))
        last_values = self.values_numpy(transitions.last_observations)
        return log_probs.numpy().reshape(shape), values.numpy().reshape(shape), final_values, last_values, None

    def _recurrent_outputs(self, transitions: Transitions, dones: np.ndarray) -> tuple:
        """`_outputs` of recurrent models, run over the batch from the states the last batch ended in, and the
        state each step received by role (`[T, N, S]`).

        The value of a step's successor is computed from the state after that step (before a reset: an
        episode's final observation continues its episode)."""
        steps, copies = shape = transitions.rewards.shape
        if self.states is None or next(iter(self.states.values())).shape[0] != copies:
            self.states = {role: np.zeros((copies, size), np.float32) for role, size in self.state_sizes.items()}
        inputs = sequence_input(self.observation_spec.model_input(flat_steps(transitions.observations)),
                                tf.constant(transitions.episode_starts.reshape(-1), tf.float32),
                                {role: tf.constant(state) for role, state in self.states.items()})
        actions = tf.convert_to_tensor(flat_steps(transitions.actions), self.action_dtype)
        log_probs, values, received, final = self.log_probs_and_values(inputs, actions)
        received = {role: state.numpy().reshape(steps, copies, -1) for role, state in received.items()}
        final = {role: state.numpy() for role, state in final.items()}
        after = {role: np.concatenate([received[role][1:], final[role][None]]) for role in received}
        final_values = np.zeros(shape, np.float32)
        final_values[dones] = self.values_numpy(map_arrays(lambda leaf: leaf[dones], transitions.final_observations),
                                                np.zeros(int(dones.sum()), np.float32),
                                                {role: state[dones] for role, state in after.items()})
        last_values = self.values_numpy(transitions.last_observations, dones[-1].astype(np.float32), final)
        self.states = final
        return (log_probs.numpy().reshape(shape), values.numpy().reshape(shape), final_values, last_values,
                received)

    def evaluate(self, transitions: Transitions) -> Rollout:
        """The `Rollout` of collected `transitions`: log-probabilities, values, rewards, advantages."""
        dones = transitions.terminated | transitions.truncated
        outputs = self._recurrent_outputs if self.state_sizes else self._outputs
        log_probs, values, final_values, last_values, states = outputs(transitions, dones)
        rewards = transitions.rewards if self.reward_scaler is None else self.reward_scaler(transitions.rewards, dones)
        next_values = next_state_values(values, last_values, final_values, dones)
        advantages, returns, mask = self.estimate_advantages(
            rewards, values, next_values, transitions.terminated, transitions.truncated
        )
        return Rollout(
            observations=transitions.observations,
            actions=transitions.actions,
            log_probs=log_probs,
            values=values,
            rewards=rewards,
            terminated=transitions.terminated,
            truncated=transitions.truncated,
            next_values=next_values,
            final_observations=transitions.final_observations,
            advantages=advantages.astype(np.float32),
            returns=returns.astype(np.float32),
            mask=(mask * transitions.valid).astype(np.float32),
            episode_returns=transitions.episode_returns,
            episode_lengths=transitions.episode_lengths,
            seconds=transitions.seconds,
            skipped=transitions.skipped,
            episode_starts=transitions.episode_starts,
            states=states,
        )
