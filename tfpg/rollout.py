"""Collecting time-major batches of `Transitions` from same-step-autoreset vector envs."""

from __future__ import annotations

import signal
import time
from typing import Callable

import gymnasium as gym
import numpy as np

from tfpg.acting import ActingPolicy
from tfpg.errors import EnvCopyError, EnvError, NonFiniteError
from tfpg.observations import finite_rows, map_arrays, select_rows, stack, with_rows
from tfpg.space_descriptions import ActionAdapter
from tfpg.transitions import Transitions


class Collector:
    """Steps a vector env with a batched acting function, tracking episodes across batches.

    The env must use `AutoresetMode.SAME_STEP`: when a copy's episode ends, the
    step returns the first observation of the next episode and the true final
    observation in `infos["final_obs"]`.

    A step that returns a NaN or infinite observation or reward raises a
    `NonFiniteError`, or with `skip_non_finite` is skipped: that transition is
    marked invalid (left out of the update) and truncated, the copy's previous
    transition is cut there (a time-limit truncation, bootstrapped from the
    valid state the bad step started in), the copy is reset and its unfinished
    episode is not counted.

    Args:
        env: the vector env.
        action_description: action space description for `to_env_actions`.
        seed: seeds the first reset and the action space.
        skip_non_finite: skip and count non-finite steps instead of raising.
        first_copy: the global index of the env's first copy among all the run's copies (workers
            other than the first step later copies).
    """

    def __init__(self, env: gym.vector.VectorEnv, action_description: dict, seed: int | None,
                 skip_non_finite: bool = False, first_copy: int = 0):
        self.env = env
        self.copies = range(first_copy, first_copy + env.num_envs)
        self.nested = isinstance(env.single_observation_space, (gym.spaces.Dict, gym.spaces.Tuple))
        self.skip_non_finite = skip_non_finite
        self.failed = False
        self.to_env_actions = ActionAdapter(action_description)
        self.num_envs = env.num_envs
        env.action_space.seed(seed)
        try:
            self.observations, _ = env.reset(seed=seed)
        except Exception as error:
            raise self._failure(error, "while resetting the envs") from error
        self.episode_return = np.zeros(self.num_envs, np.float64)
        self.episode_length = np.zeros(self.num_envs, np.int64)
        self.episode_starts = np.ones(self.num_envs, bool)  # whether each copy's next step starts an episode

    def collect_batch(self, steps_per_env: int, acting: ActingPolicy, seed: np.ndarray,
                      first_step: int = 0) -> Transitions:
        """`collect` with the actions of `acting`, its noise seeded by `seed` (see `tfpg.acting`)."""
        return self.collect(steps_per_env, acting.sampler(seed, steps_per_env, self.copies), first_step)

    def collect(self, steps_per_env: int, act: Callable[[np.ndarray], np.ndarray],
                first_step: int = 0) -> Transitions:
        """Takes `steps_per_env` steps in every copy.

        Args:
            steps_per_env: T.
            act: maps a `[N, *obs_shape]` batch and the `[N]` episode-start flags of its rows to `[N, A]` flat
                actions.
            first_step: the env-step count before this batch, for error messages.

        Raises:
            NonFiniteError: the env returned a NaN or infinite observation or reward.
            EnvError: an env copy raised, or its worker process died.

        Returns:
            The `Transitions`; `final_observations[t, i]` holds the true final
            observation where the episode of copy `i` ended at step `t` (and the
            successor observation elsewhere, which is never used).
        """
        start = time.perf_counter()
        observations = []
        actions = []
        rewards = np.zeros((steps_per_env, self.num_envs), np.float32)
        terminated = np.zeros((steps_per_env, self.num_envs), bool)
        truncated = np.zeros((steps_per_env, self.num_envs), bool)
        finals = []
        valid = np.ones((steps_per_env, self.num_envs), bool)
        episode_starts = np.zeros((steps_per_env, self.num_envs), bool)
        episode_returns, episode_lengths, episode_steps = [], [], []
        step = self.env.step
        for t in range(steps_per_env):
            env_step = first_step + t * self.num_envs
            episode_starts[t] = self.episode_starts
            flat_actions = act(self.observations, self.episode_starts)
            invalid = self.to_env_actions.invalid_rows(flat_actions)
            if invalid is not None:
                self._raise_invalid_actions(env_step, flat_actions, invalid)
            try:
                next_observations, reward, term, trunc, infos = step(self.to_env_actions(flat_actions))
            except Exception as error:
                raise self._failure(error, f"at env step {env_step}") from error
            done = term | trunc
            final = next_observations
            if done.any():
                ended = np.flatnonzero(done)
                final = with_rows(next_observations, ended, [infos["final_obs"][i] for i in ended])
            bad = None
            if not (np.isfinite(reward).all() and self._all_finite(final)
                    and (final is next_observations or self._all_finite(next_observations))):
                bad = ~(np.isfinite(reward) & self._finite_rows(final) & self._finite_rows(next_observations))
                if not self.skip_non_finite:
                    self._raise_non_finite(env_step, reward, bad)
                reward, term, trunc, done = np.where(bad, 0.0, reward), term & ~bad, trunc | bad, done | bad
                final = select_rows(bad, self.observations, final)
                valid[t] = ~bad
                if t > 0:  # cut the copy's previous transition at the valid state the bad step started in
                    truncated[t - 1] |= bad & ~(terminated[t - 1] | truncated[t - 1])
                next_observations = self._reset_copies(bad, next_observations, env_step)
            observations.append(self.observations)
            actions.append(flat_actions)
            rewards[t], terminated[t], truncated[t] = reward, term, trunc
            self.episode_return += reward
            self.episode_length += 1
            for i in np.flatnonzero(done if bad is None else done & ~bad):
                episode_returns.append(float(self.episode_return[i]))
                episode_lengths.append(int(self.episode_length[i]))
                episode_steps.append(t)
            self.episode_return[done] = 0.0
            self.episode_length[done] = 0
            finals.append(final)
            self.observations = next_observations
            self.episode_starts = done
        return Transitions(
            observations=stack(observations) if self.nested else np.stack(observations),
            actions=np.stack(actions),
            rewards=rewards,
            terminated=terminated,
            truncated=truncated,
            final_observations=stack(finals) if self.nested else np.stack(finals),
            last_observations=map_arrays(lambda array: np.array(array, copy=True), self.observations),
            episode_returns=episode_returns,
            episode_lengths=episode_lengths,
            seconds=time.perf_counter() - start,
            valid=valid,
            skipped=int((~valid).sum()),
            episode_steps=episode_steps,
            episode_starts=episode_starts,
        )

    def _all_finite(self, batch) -> bool:
        if self.nested:
            return bool(finite_rows(batch, self.num_envs).all())
        return bool(np.isfinite(batch).all())

    def _finite_rows(self, batch) -> np.ndarray:
        """`[N]`: True where a copy's row of `batch` is all finite."""
        if self.nested:
            return finite_rows(batch, self.num_envs)
        return np.isfinite(batch.reshape(self.num_envs, -1)).all(axis=1)

    def _reset_copies(self, copies: np.ndarray, observations: np.ndarray, env_step: int) -> np.ndarray:
        """Resets the given copies; returns the observations with theirs replaced by the reset ones."""
        try:
            reset, _ = self.env.reset(options={"reset_mask": copies})
        except Exception as error:
            raise self._failure(error, f"while resetting after non-finite data at env step {env_step}") from error
        if not self._finite_rows(reset)[copies].all():
            raise NonFiniteError(
                f"Env copy {', '.join(map(str, np.flatnonzero(copies)))} returned a non-finite observation from "
                f"reset after skipping non-finite data at env step {env_step}; it cannot be skipped. Fix or wrap "
                f"the environment."
            )
        return select_rows(copies, reset, observations)

    def _raise_invalid_actions(self, step: int, actions: np.ndarray, invalid: np.ndarray) -> None:
        copies = [self.copies[index] for index in np.flatnonzero(invalid)]
        example = actions[np.flatnonzero(invalid)[0]].tolist()
        raise NonFiniteError(
            f"The policy chose an action outside the action space for env copy {', '.join(map(str, copies))} at env "
            f"step {step} (flat action {example}): its outputs are not finite, or a head has more classes than the "
            f"space. This is a fault of the policy, not of the env; nothing of this batch was used. Check the "
            f"policy model's outputs (NaN logits, a log of a negative number)."
        )

    def _raise_non_finite(self, step: int, reward: np.ndarray, bad: np.ndarray) -> None:
        finite_reward = np.isfinite(reward)
        what = "observation" if finite_reward.all() else "reward"
        copies = np.flatnonzero(bad if what == "observation" else ~finite_reward)
        raise NonFiniteError(
            f"The env returned a non-finite {what} in env copy {', '.join(map(str, copies))} at env step "
            f"{step}. Nothing from this batch was used; fix or wrap the environment (e.g. clip or replace "
            f"invalid values), or set non_finite_env_data='skip' to leave such steps out and count them."
        )

    def _failure(self, error: Exception, when: str) -> EnvError:
        """An `EnvError` naming the failed env copy (when known) and the cause."""
        self.failed = True
        dead = self._dead_workers(wait=2.0 if isinstance(error, (EOFError, OSError)) else 0.0)
        if dead:
            what = "; ".join(f"the worker process of env copy {index} died ({_describe_exit(code)})"
                             for index, code in dead)
        elif isinstance(error, EnvCopyError):
            what = str(error)
        else:
            what = f"the vector env raised {type(error).__name__}: {error}"
        return EnvError(
            f"Collection failed {when}: {what}. The batch in progress was dropped; the agent is as after "
            f"its last update. Fix the environment, then continue from the newest checkpoint."
        )

    def _dead_workers(self, wait: float) -> list[tuple[int, int]]:
        """(index, exit code) of worker processes that have exited, waiting up to `wait` s for one.

        A broken pipe can be seen a moment before the dying worker can be reaped.
        """
        processes = getattr(self.env, "processes", [])
        deadline = time.monotonic() + wait
        while True:
            dead = [(index, process.exitcode) for index, process in enumerate(processes)
                    if process.exitcode is not None]
            if dead or time.monotonic() >= deadline:
                return dead
            time.sleep(0.05)

    def close(self) -> None:
        """Closes the env; after a failure, the worker processes of an async env are terminated.

        (An orderly shutdown would wait for the answers of a step that failed.) Closing an env that
        failed never raises: the failure was reported already, and an error here would replace it.
        """
        if not self.failed:
            self.env.close()
            return
        try:
            self.env.close(terminate=True) if isinstance(self.env, gym.vector.AsyncVectorEnv) else self.env.close()
        except Exception:  # e.g. EOFError: Gymnasium first waits for the failed step's answers on dead pipes
            for process in getattr(self.env, "processes", []):
                if process.is_alive():
                    process.kill()
            self.env.closed = True  # (so that its finaliser does not try again)


def _describe_exit(code: int) -> str:
    if code < 0:
        return f"killed by signal {signal.Signals(-code).name}"
    return f"exit code {code}"
