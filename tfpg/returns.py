"""Advantage and return estimators over time-major arrays `[T, N]`.

All functions are pure NumPy. Episode boundaries follow Gymnasium semantics:

- `terminated[t]`: the transition at `t` reached a terminal state; nothing is
  bootstrapped after it.
- `truncated[t]`: the episode was cut (a time limit); the value of the true
  final observation is bootstrapped, but the advantage recursion stops there.

`next_values[t]` is V(s_{t+1}) of the transition's own successor state: the
value of the next observation of the same episode, of the true final
observation on truncation, and anything (it is masked) on termination.
"""

from __future__ import annotations

import numpy as np


def next_state_values(
    values: np.ndarray,
    last_values: np.ndarray,
    final_values: np.ndarray,
    dones: np.ndarray,
) -> np.ndarray:
    """Values of each transition's successor state.

    next[t] = final_values[t]   if dones[t] (the episode ended at t)
              values[t + 1]     otherwise, for t < T - 1
              last_values       otherwise, for t = T - 1

    Args:
        values: `[T, N]` values V(s_t) of the observed states.
        last_values: `[N]` values of the observations following the batch.
        final_values: `[T, N]` values of the true final observations, used
            where an episode ended (zero where it terminated is fine: it is
            masked by the estimators).
        dones: `[T, N]` booleans, terminated or truncated.

    Returns:
        `[T, N]` array of V(s_{t+1}).
    """
    following = np.concatenate([values[1:], last_values[None]], axis=0)
    return np.where(dones, final_values, following).astype(values.dtype)


def generalized_advantages(
    rewards: np.ndarray,
    values: np.ndarray,
    next_values: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    gamma: float,
    lam: float,
) -> tuple[np.ndarray, np.ndarray]:
    """GAE(γ, λ) advantages and the matching value targets.

    δ_t = r_t + γ (1 − terminated_t) V(s_{t+1}) − V(s_t)
    A_t = δ_t + γ λ (1 − done_t) A_{t+1},   done_t = terminated_t ∨ truncated_t
    R_t = A_t + V(s_t)

    Args:
        rewards: `[T, N]` rewards.
        values: `[T, N]` V(s_t).
        next_values: `[T, N]` V(s_{t+1}) (see `next_state_values`).
        terminated: `[T, N]` booleans.
        truncated: `[T, N]` booleans.
        gamma: discount factor in [0, 1].
        lam: GAE λ in [0, 1]; λ = 1 gives Monte-Carlo advantages with a
            bootstrap at the batch end, λ = 0 the one-step TD error.

    Returns:
        `(advantages, returns)`, both `[T, N]`.
    """
    not_terminal = 1.0 - terminated.astype(np.float64)
    continues = 1.0 - np.logical_or(terminated, truncated).astype(np.float64)
    deltas = rewards + gamma * not_terminal * next_values - values
    advantages = np.zeros(deltas.shape, dtype=np.float64)
    running = np.zeros(deltas.shape[1:], dtype=np.float64)
    for t in range(deltas.shape[0] - 1, -1, -1):
        running = deltas[t] + gamma * lam * continues[t] * running
        advantages[t] = running
    advantages = advantages.astype(values.dtype)
    return advantages, (advantages + values).astype(values.dtype)


def reward_to_go(
    rewards: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    gamma: float,
    bootstrap_values: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Discounted Monte-Carlo reward-to-go and a mask of complete returns.

    G_t = r_t + γ G_{t+1} inside an episode; G_t = r_t at a termination and
    G_t = r_t + γ V(s_final) at a truncation (V = 0 without bootstrap values).
    Transitions whose episode has not ended by the end of the batch have no
    Monte-Carlo return; they are reported in the mask as `False`.

    Args:
        rewards: `[T, N]` rewards.
        terminated: `[T, N]` booleans.
        truncated: `[T, N]` booleans.
        gamma: discount factor in [0, 1].
        bootstrap_values: optional `[T, N]` values of the true final
            observations, used where `truncated`.

    Returns:
        `(returns, complete)`: `[T, N]` returns and a `[T, N]` boolean mask.
    """
    dones = np.logical_or(terminated, truncated)
    if bootstrap_values is None:
        bootstrap_values = np.zeros_like(rewards)
    tail = np.where(truncated, gamma * bootstrap_values, 0.0)
    returns = np.zeros(rewards.shape, dtype=np.float64)
    complete = np.zeros(rewards.shape, dtype=bool)
    running = np.zeros(rewards.shape[1:], dtype=np.float64)
    seen_end = np.zeros(rewards.shape[1:], dtype=bool)
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = rewards[t] + np.where(dones[t], tail[t], gamma * running)
        seen_end = seen_end | dones[t]
        returns[t] = running
        complete[t] = seen_end
    return returns.astype(rewards.dtype), complete
