"""The experience batch types: raw `Transitions` as collected, and the `Rollout` an update trains on."""

from __future__ import annotations

import dataclasses

import numpy as np

from tfpg.observations import concatenate, map_arrays


@dataclasses.dataclass
class Rollout:
    """One batch of experience, time-major `[T, N, ...]`.

    Attributes:
        observations: `[T, N, *obs_shape]` observations the actions were taken in (for Dict
            and Tuple spaces a dict or tuple of such arrays, one per leaf space).
        actions: `[T, N, A]` flat policy actions (before clipping to the env bounds).
        log_probs: `[T, N]` log π_old(a|s) under the policy the update starts from.
        values: `[T, N]` V_old(s).
        rewards: `[T, N]` rewards (scaled if reward scaling is on).
        terminated: `[T, N]` terminal transitions.
        truncated: `[T, N]` time-limit cuts.
        next_values: `[T, N]` V(s_{t+1}) of each transition's own successor.
        final_observations: `[T, N, *obs_shape]` each transition's own successor observation s_{t+1}
            (the true final observation where its episode ended).
        advantages: `[T, N]` advantage estimates.
        returns: `[T, N]` value targets.
        mask: `[T, N]` 1.0 where the transition is used for learning.
        episode_returns: undiscounted, unscaled returns of episodes finished in the batch.
        episode_lengths: lengths of those episodes.
        seconds: wall-clock seconds spent collecting.
        skipped: env steps skipped for non-finite data (`non_finite_env_data="skip"`).
        collected_by: an id of the agent that collected the batch (its log-probabilities and values are that
            agent's), or None for a rollout made by hand.
        episode_starts: `[T, N]` True where the step is the first of an episode (a recurrent model's state is
            zeroed before it), or None.
        states: for a recurrent agent, the state each step received, by model role: `[T, N, S]`; else None.
    """

    observations: np.ndarray
    actions: np.ndarray
    log_probs: np.ndarray
    values: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    next_values: np.ndarray
    final_observations: np.ndarray
    advantages: np.ndarray
    returns: np.ndarray
    mask: np.ndarray
    episode_returns: list
    episode_lengths: list
    seconds: float = 0.0
    skipped: int = 0
    collected_by: str | None = None
    episode_starts: np.ndarray | None = None
    states: dict | None = None

    @property
    def num_steps(self) -> int:
        """Environment steps in the batch (T × N)."""
        return int(self.rewards.size)

    def flat(self, name: str) -> np.ndarray:
        """A field with its time and env axes merged: `[T * N, ...]` (leaf by leaf for nested observations)."""
        return map_arrays(lambda array: array.reshape((-1, *array.shape[2:])), getattr(self, name))


@dataclasses.dataclass
class Transitions:
    """Raw collected steps, before values and advantages are attached.

    `episode_steps` holds the step each finished episode ended at; `restarted`,
    `[N]` or None, marks copies whose env was created anew just before the batch;
    `episode_starts`, `[T, N]`, marks the steps that start an episode.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    final_observations: np.ndarray
    last_observations: np.ndarray
    episode_returns: list
    episode_lengths: list
    seconds: float
    valid: np.ndarray
    skipped: int
    episode_steps: list = dataclasses.field(default_factory=list)
    restarted: np.ndarray | None = None
    episode_starts: np.ndarray | None = None


def merge_transitions(parts: list[Transitions]) -> Transitions:
    """The transitions of several vector envs as those of one vector env of all their copies, in order.

    Arrays are joined along the copy axis; finished episodes are ordered by the
    step they ended at, then by copy, as one vector env records them
    (`episode_steps` holds each episode's step). `restarted` marks the copies whose
    env was created anew before the batch (None if none was).
    """
    episodes = sorted(
        ((step, part, position) for part, transitions in enumerate(parts)
         for position, step in enumerate(transitions.episode_steps)))
    restarted = [p.restarted if p.restarted is not None else np.zeros(p.rewards.shape[1], bool) for p in parts]
    return Transitions(
        observations=concatenate([p.observations for p in parts], axis=1),
        actions=np.concatenate([p.actions for p in parts], axis=1),
        rewards=np.concatenate([p.rewards for p in parts], axis=1),
        terminated=np.concatenate([p.terminated for p in parts], axis=1),
        truncated=np.concatenate([p.truncated for p in parts], axis=1),
        final_observations=concatenate([p.final_observations for p in parts], axis=1),
        last_observations=concatenate([p.last_observations for p in parts], axis=0),
        episode_returns=[parts[part].episode_returns[position] for _, part, position in episodes],
        episode_lengths=[parts[part].episode_lengths[position] for _, part, position in episodes],
        seconds=max(p.seconds for p in parts),
        valid=np.concatenate([p.valid for p in parts], axis=1),
        skipped=sum(p.skipped for p in parts),
        episode_steps=[step for step, _, _ in episodes],
        restarted=np.concatenate(restarted) if any(p.restarted is not None for p in parts) else None,
        episode_starts=np.concatenate([p.episode_starts for p in parts], axis=1),
    )
