"""Collecting experience: the agent's vector env, acting, values, reward scaling and advantages."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from tfpg.config import positive_int
from tfpg.envs import EnvLike, check_backend, check_env_id, make_vector_env
from tfpg.observations import batch_size, map_arrays
from tfpg.returns import generalized_advantages, next_state_values
from tfpg.rollout import Collector
from tfpg.transitions import Rollout, Transitions
from tfpg.workers import Workers


ANY = object()  # `_vector_env`: whatever workers the current source has


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux's MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


class CollectionMixin:
    """`collect` and its helpers, mixed into `OnPolicyAgent` (which provides the models and state)."""

    def _vector_env(self, env: EnvLike, num_envs: int | None = None, asynchronous: bool | None = None,
                    workers: "Workers | None | object" = ANY, backend: str | None = None):
        """The rollout source of `env`, reused while `env` (and the copies and workers asked for) are the same.

        A local `Collector`, or with `workers` a `tfpg.ray_rollouts.RayRollouts`.
        """
        current = self._collector
        if current is not None and self._collector_source is env and self._same_copies(num_envs, workers) \
                and asynchronous in (None, self._collector_asynchronous) \
                and backend in (None, self._collector_backend):
            return current
        asynchronous, backend = bool(asynchronous), backend or "gymnasium"
        workers = None if workers is ANY else workers
        seed = self.seed + 1000 * self.iterations
        skip = self.config.non_finite_env_data == "skip"
        if workers is not None:
            self.close()  # before joining Ray: a source that started Ray stops it when closed
            source, owned = self._ray_rollouts(env, workers, asynchronous, seed, skip, backend), True
        else:
            vector_env = make_vector_env(env, num_envs=num_envs, asynchronous=asynchronous, backend=backend)
            owned = vector_env is not env
            try:
                self.build(vector_env.single_observation_space, vector_env.single_action_space)
            except ValueError:
                if owned:
                    vector_env.close()
                raise
            self.close()
            source = Collector(vector_env, self.action_description, seed, skip_non_finite=skip)
        self._record_env(env)
        self._collector = source
        self._collector_source = env
        self._collector_asynchronous = asynchronous
        self._collector_workers = workers
        self._collector_backend = backend
        self._owns_env = owned
        self.reward_scaler.start_episodes(source.num_envs)
        return source

    def _same_copies(self, num_envs: int | None, workers) -> bool:
        """Whether the current source has the copies asked for (with workers, they are the workers' own)."""
        if workers is not ANY and workers != self._collector_workers:
            return False
        return self._collector_workers is not None or num_envs in (None, self._collector.num_envs)

    def _ray_rollouts(self, env: EnvLike, workers: Workers, asynchronous: bool, seed: int, skip: bool,
                      backend: str):
        if not isinstance(env, str):
            raise ValueError(f"Distributed collection (num_workers > 0) makes the env in each worker from a "
                             f"Gymnasium id; got {type(env).__name__}. Pass the env's id (register a custom env "
                             f"under an id, e.g. 'my_package.envs:MyEnv-v0').")
        check_env_id(env)
        check_backend(env, backend, asynchronous)
        from tfpg.ray_rollouts import RayRollouts  # Ray is an optional dependency
        source = RayRollouts(env, workers.num_workers, workers.envs_per_worker, asynchronous, seed, skip,
                             address=workers.address, backend=backend)
        try:
            self.build(*source.spaces())
            source.start_acting(self.networks, self.observation_description, self.action_description, self.config)
        except BaseException:
            source.close()
            raise
        return source

    def check_batch_memory(self, copies: int) -> None:
        """Raises a `ValueError` if a batch of `rollout_steps` × `copies` env steps cannot fit in memory.

        Estimated before anything is collected: each step stores its observation twice (the next
        observation and, densely, the final observation of an episode; three times when the update
        re-estimates advantages, which also holds the successors as a tensor), its action and about
        ten float32 fields. Needs a built agent.
        """
        steps = self.config.rollout_steps * copies
        observation_bytes = sum(int(np.prod(leaf.shape, dtype=np.int64))
                                * np.dtype(leaf.description.get("dtype", "int64")).itemsize
                                for leaf in self.observation_spec.leaves)
        per_step = (3 if self._recomputes_advantages() else 2) * observation_bytes + 4 * self._action_size + 40
        needed = steps * per_step
        available = available_memory()
        if available is not None and needed > available:
            raise ValueError(
                f"A batch of rollout_steps={self.config.rollout_steps} × {copies} env copies = {steps} steps needs "
                f"about {needed / 2**30:.3g} GiB ({per_step} bytes per step), but {available / 2**30:.3g} GiB of "
                f"memory is available. Lower rollout_steps or the number of env copies."
            )

    def collect(self, env: EnvLike, steps: int) -> Rollout:
        """Collects one batch of experience with the current policy, advantages included.

        The observation statistics are updated with the batch's observations,
        then log-probabilities and values are computed under the updated
        statistics, so they are exactly those of the policy the next update
        starts from.

        Args:
            env: a Gymnasium id, `Env` or `VectorEnv` (the same object reuses its env).
            steps: environment steps in total; each of the N env copies takes
                `steps // N` (at least one each).

        Returns:
            A time-major `Rollout`.
        """
        steps = positive_int("steps", steps)
        collector = self._vector_env(env)
        if steps < collector.num_envs:
            raise ValueError(
                f"steps={steps} is smaller than the number of env copies ({collector.num_envs}); "
                f"every copy takes at least one step, so pass steps >= {collector.num_envs}."
            )
        transitions = collector.collect_batch(steps // collector.num_envs, self._acting, self._batch_seed(),
                                              self.total_steps)
        if transitions.restarted is not None:
            self.reward_scaler.restart(transitions.restarted)
        self._normalize_fn(self._as_model_input(self._flat(transitions.observations)))
        rollout = self._evaluate_transitions(transitions)
        self.total_steps_variable.assign_add(rollout.num_steps)
        return rollout

    def _flat(self, array: np.ndarray) -> np.ndarray:
        return map_arrays(lambda leaf: leaf.reshape((-1, *leaf.shape[2:])), array)

    def _as_model_input(self, observations: np.ndarray) -> tf.Tensor:
        return self.observation_spec.model_input(observations)

    def _batch_seed(self) -> np.ndarray:
        """A batch's acting seed, drawn from the agent's checkpointed generator."""
        return self.rng.uniform_full_int([2], tf.int64).numpy().view(np.uint64)

    def _values_numpy(self, observations: np.ndarray) -> np.ndarray:
        if batch_size(observations) == 0:
            return np.zeros((0,), np.float32)
        return self._value_fn(self._as_model_input(observations)).numpy()

    def _evaluate_transitions(self, transitions: Transitions) -> Rollout:
        shape = transitions.rewards.shape
        observations = self._as_model_input(self._flat(transitions.observations))
        actions = tf.convert_to_tensor(self._flat(transitions.actions), self._action_dtype)
        log_probs, values = self._evaluate_fn(observations, actions)
        log_probs, values = log_probs.numpy().reshape(shape), values.numpy().reshape(shape)
        dones = transitions.terminated | transitions.truncated
        final_values = np.zeros(shape, np.float32)
        final_values[dones] = self._values_numpy(map_arrays(lambda leaf: leaf[dones], transitions.final_observations))
        last_values = self._values_numpy(transitions.last_observations)
        rewards = self.reward_scaler(transitions.rewards, dones) if self.config.scale_rewards \
            else transitions.rewards
        next_values = next_state_values(values, last_values, final_values, dones)
        advantages, returns, mask = self._estimate_advantages(
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
        )

    def _estimate_advantages(self, rewards, values, next_values, terminated, truncated):
        """GAE(γ, λ) advantages, value targets and a mask (all ones)."""
        advantages, returns = generalized_advantages(
            rewards, values, next_values, terminated, truncated,
            self.config.gamma, self.config.gae_lambda,
        )
        return advantages, returns, np.ones_like(values)

