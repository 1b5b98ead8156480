"""The parts of one update on a batch, as functions: the batch's tensors, the learning rate, gradient steps,
and undoing an update whose results are not finite.

`OnPolicyAgent.train_on_batch` puts them together around each algorithm's `_update`; algorithms call
`apply_gradients` for their gradient steps.
"""

from __future__ import annotations

from typing import Callable, Iterable

import keras
import numpy as np
import tensorflow as tf

from tfpg.config import AgentConfig
from tfpg.errors import NonFiniteError
from tfpg.observations import ObservationSpec
from tfpg.recurrent import sequence_input
from tfpg.sequences import flat_sequences, sequence_starts
from tfpg.transitions import Rollout

BATCH_FIELDS = ("observations", "actions", "log_probs", "values", "advantages", "returns", "mask")
# `[T, N]` fields an update that re-estimates advantages reads, with the flat successor observations
TIME_MAJOR_FIELDS = ("rewards", "terminated", "truncated")


def explained_variance(predictions: np.ndarray, targets: np.ndarray) -> float:
    """1 − Var(R − V) / Var(R); NaN when the targets do not vary."""
    variance = float(np.var(targets))
    if variance == 0.0:
        return float("nan")
    return 1.0 - float(np.var(targets - predictions)) / variance


def standardized_advantages(advantages: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(Â − μ) / (σ + 1e-8) with μ and σ the mean and std of the entries whose mask is 1."""
    weights = mask / max(float(mask.sum()), 1.0)
    mean = float((advantages * weights).sum())
    std = float(np.sqrt(((advantages - mean) ** 2 * weights).sum()))
    return ((advantages - mean) / (std + 1e-8)).astype(np.float32)


def is_annealed(config: AgentConfig) -> bool:
    """Whether the learning rate changes over training (a decay horizon, or the linear schedule)."""
    return config.learning_rate_decay_steps > 0 or config.learning_rate_schedule == "linear"


def annealed(value: float, schedule: str, decay_steps: int, steps_before: int, step_target: int | None) -> float:
    """`value` for a batch collected after `steps_before` env steps: value · max(0, 1 − s / H) when annealed.

    The horizon H is `decay_steps` if set (> 0), else, with the "linear" schedule, `step_target` (the step
    target of the `fit` in progress); with neither, `value` is constant. With s counted before the batch, a
    run's first update uses the full value and its last one above 0.
    """
    horizon = decay_steps
    if horizon <= 0 and schedule == "linear":
        horizon = step_target or 0
    if horizon <= 0:
        return value
    return value * max(0.0, 1.0 - steps_before / horizon)


def learning_rate_at(config: AgentConfig, steps_before: int, step_target: int | None) -> float:
    """The learning rate for a batch collected after `steps_before` env steps (`annealed` by the config's
    `learning_rate_schedule` and `learning_rate_decay_steps`)."""
    return annealed(config.learning_rate, config.learning_rate_schedule, config.learning_rate_decay_steps,
                    steps_before, step_target)


def apply_gradients(optimizer: keras.optimizers.Optimizer, gradients: list, variables: list,
                    max_grad_norm: float) -> tf.Tensor:
    """Clips `gradients` to the global norm `max_grad_norm` (if > 0) and applies them; returns the norm before
    clipping."""
    norm = tf.linalg.global_norm(gradients)
    if max_grad_norm > 0:
        gradients, _ = tf.clip_by_global_norm(gradients, max_grad_norm, use_norm=norm)
    optimizer.apply_gradients(zip(gradients, variables))
    return norm


def distinct(variables: Iterable) -> list:
    """`variables` with repeats dropped (by identity: a layer shared by two models appears once), in order."""
    return list({id(variable): variable for variable in variables}.values())


def written_variables(trackables: list) -> list:
    """Every variable of `trackables` (models, optimizers, variables), each once."""
    return distinct(variable for trackable in trackables
                    for variable in getattr(trackable, "variables",
                                            [trackable] if isinstance(trackable, tf.Variable) else []))


def transactional(update: Callable[..., dict], state: list, batch: dict, **options) -> dict:
    """`update(batch, **options)`, undone if a metric or a floating variable of `state` comes out NaN or infinite.

    Returns the update's metrics and `all_finite`, whether it was kept.
    """
    before = [tf.identity(v) for v in state]
    metrics = update(batch, **options)
    checks = [tf.reduce_all(tf.math.is_finite(tf.cast(value, tf.float32))) for value in metrics.values()]
    checks += [tf.reduce_all(tf.math.is_finite(v)) for v in state if tf.as_dtype(v.dtype).is_floating]
    finite = tf.reduce_all(tf.stack(checks))
    if not finite:
        for variable, value in zip(state, before):
            variable.assign(value)
    metrics["all_finite"] = finite
    return metrics


def check_rollout_shapes(rollout: Rollout, spec: ObservationSpec, action_size: int) -> None:
    """Raises a `ValueError` naming the field if a rollout's observations or actions are not `[T, N, ...]` of an
    agent's observation spec and flat action size."""
    steps = tuple(np.shape(rollout.rewards))
    try:
        leaves = spec.flatten(rollout.observations)
    except (ValueError, TypeError) as error:
        raise ValueError(f"The rollout's observations do not have the structure of this agent's observation space "
                         f"({error}); collect the batch with this agent.") from None
    for leaf, array in zip(spec.leaves, leaves):
        expected = (*steps, *leaf.shape)
        if tuple(np.shape(array)) != expected:
            name = f"observations {leaf.path!r}" if leaf.path else "observations"
            raise ValueError(f"The rollout's {name} have shape {tuple(np.shape(array))}, but this agent takes "
                             f"{expected} for a batch of {steps[0]} steps × {steps[1]} copies; collect the batch "
                             f"with this agent, from an env with its observation space.")
    if tuple(np.shape(rollout.actions)) != (*steps, action_size):
        raise ValueError(f"The rollout's actions have shape {tuple(np.shape(rollout.actions))}, but this agent's are "
                         f"{(*steps, action_size)}; collect the batch with this agent.")


def batch_tensors(rollout: Rollout, spec: ObservationSpec, action_dtype: tf.DType, normalize_advantages: bool,
                  time_major: bool, sequence_length: int | None = None) -> tuple[dict, dict]:
    """A rollout as the flat NumPy batch and the tensors an update reads (with `time_major`, also the `[T, N]`
    fields and the successor observations that re-estimating advantages needs).

    A recurrent agent's rollout (one with `states`) is cut into sequences of `sequence_length` steps
    (`tfpg.sequences`), and its observations become a `tfpg.recurrent.sequence_input` that starts each sequence
    from the state it was collected with."""
    if rollout.states is None:
        batch = {name: rollout.flat(name) for name in BATCH_FIELDS}
    else:
        batch = {name: flat_sequences(getattr(rollout, name), sequence_length) for name in BATCH_FIELDS}
    if normalize_advantages:
        batch["advantages"] = standardized_advantages(batch["advantages"], batch["mask"])
    observations = spec.model_input(batch["observations"])
    if rollout.states is not None:
        observations = sequence_input(
            observations,
            tf.convert_to_tensor(flat_sequences(rollout.episode_starts, sequence_length), tf.float32),
            {role: tf.convert_to_tensor(sequence_starts(states, sequence_length))
             for role, states in rollout.states.items()})
    tensors = {
        "observations": observations,
        "actions": tf.convert_to_tensor(batch["actions"], action_dtype),
        **{k: tf.convert_to_tensor(batch[k], tf.float32) for k in BATCH_FIELDS[2:]},
    }
    if time_major:
        tensors["time_major"] = {
            "final_observations": spec.model_input(rollout.flat("final_observations")),
            **{k: tf.convert_to_tensor(getattr(rollout, k), tf.float32) for k in TIME_MAJOR_FIELDS},
        }
    return batch, tensors


def non_finite_update_error(metrics: dict, iteration: int, total_steps: int) -> NonFiniteError:
    """The error for an update that was undone because what it produced was not finite."""
    bad = sorted(k for k, v in metrics.items() if not np.isfinite(v)) or ["parameters"]
    return NonFiniteError(
        f"The update at iteration {iteration} (after {total_steps} env steps) produced non-finite values in: "
        f"{', '.join(bad)}. The update was undone: parameters and optimizer state are as before it (the "
        f"observation statistics and step counter include the batch), and no checkpoint was written. Lower the "
        f"learning rate or the trust region, or check the rewards' scale."
    )
