"""One update on a batch: the shared step around each algorithm's `_update`.

`train_on_batch` standardises advantages, sets an annealed learning rate and
runs the compiled `_transactional_update`, which undoes the algorithm's update
in-graph if anything it produced or wrote is NaN or infinite. The helpers here
are what algorithms' `_update`s call for gradient steps.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfpg.errors import NonFiniteError
from tfpg.transitions import Rollout

BATCH_FIELDS = ("observations", "actions", "log_probs", "values", "advantages", "returns", "mask")
# `[T, N]` fields an update that re-estimates advantages reads, with the flat successor observations
TIME_MAJOR_FIELDS = ("rewards", "terminated", "truncated")


def _explained_variance(predictions: np.ndarray, targets: np.ndarray) -> float:
    variance = float(np.var(targets))
    if variance == 0.0:
        return float("nan")
    return 1.0 - float(np.var(targets - predictions)) / variance


class UpdateMixin:
    """`train_on_batch` and the update helpers, mixed into `OnPolicyAgent` (which provides the models)."""

    def _learning_rate_now(self, steps_before: int) -> float:
        """The configured rate × max(0, 1 − s / horizon) when annealed, with s the env steps collected before
        the batch the rate is for (so a run's first update trains at the full rate and its last above 0),
        and the horizon `learning_rate_decay_steps` if set, else, with the linear schedule, `fit`'s step
        target."""
        horizon = self.config.learning_rate_decay_steps
        if horizon <= 0 and self.config.learning_rate_schedule == "linear":
            horizon = self._step_target or 0
        if horizon <= 0:
            return self.config.learning_rate
        return self.config.learning_rate * max(0.0, 1.0 - steps_before / horizon)

    def _apply_gradients(self, optimizer: keras.optimizers.Optimizer, gradients: list,
                         variables: list) -> tf.Tensor:
        """Clips gradients to `max_grad_norm` (if > 0), applies them; returns the pre-clip norm."""
        norm = tf.linalg.global_norm(gradients)
        if self.config.max_grad_norm > 0:
            gradients, _ = tf.clip_by_global_norm(gradients, self.config.max_grad_norm, use_norm=norm)
        optimizer.apply_gradients(zip(gradients, variables))
        return norm

    def _build_optimizer(self, optimizer: keras.optimizers.Optimizer, variables: list) -> None:
        """Creates an optimizer's slot variables now, so checkpoints can restore into them."""
        optimizer.build(variables)

    def _training_state(self) -> list:
        """Every variable an update may write: networks, optimizer slots and counters, algorithm state."""
        variables = {}
        for trackable in [self.policy, self.value_model, *self._checkpoint_extras.values()]:
            for variable in getattr(trackable, "variables", [trackable] if isinstance(trackable, tf.Variable) else []):
                variables.setdefault(id(variable), variable)
        return list(variables.values())

    def _transactional_update(self, batch: dict, **options) -> dict:
        """`_update(batch, **options)`, undone if any metric or written variable comes out NaN or infinite."""
        state = self._training_state()
        before = [tf.identity(v) for v in state]
        metrics = self._update(batch, **options)
        checks = [tf.reduce_all(tf.math.is_finite(tf.cast(value, tf.float32))) for value in metrics.values()]
        checks += [tf.reduce_all(tf.math.is_finite(v)) for v in state if tf.as_dtype(v.dtype).is_floating]
        finite = tf.reduce_all(tf.stack(checks))
        if not finite:
            for variable, value in zip(state, before):
                variable.assign(value)
        metrics["all_finite"] = finite
        return metrics

    def train_on_batch(self, rollout: Rollout) -> dict:
        """Runs one update of the algorithm on a rollout.

        Args:
            rollout: a batch from `collect`.

        Returns:
            A dict of float metrics (losses, entropy, approx KL, explained
            variance, ...).
        """
        if not self.built:
            raise ValueError("The agent is not built: call collect(env, steps) or build(...) first.")
        if not isinstance(rollout, Rollout):
            raise ValueError(f"train_on_batch expects a Rollout from agent.collect, got {type(rollout).__name__}.")
        batch = {name: rollout.flat(name) for name in BATCH_FIELDS}
        if self.config.normalize_advantages:
            batch["advantages"] = self._standardize(batch["advantages"], batch["mask"])
        tensors = {
            "observations": self._as_model_input(batch["observations"]),
            "actions": tf.convert_to_tensor(batch["actions"], self._action_dtype),
            **{k: tf.convert_to_tensor(batch[k], tf.float32) for k in BATCH_FIELDS[2:]},
        }
        if self._recomputes_advantages():
            tensors["time_major"] = {
                "final_observations": self._as_model_input(rollout.flat("final_observations")),
                **{k: tf.convert_to_tensor(getattr(rollout, k), tf.float32) for k in TIME_MAJOR_FIELDS},
            }
        self._before_update(self.total_steps - rollout.num_steps)
        metrics = {k: float(v) for k, v in self._compiled_update()(tensors).items()}
        if not metrics.pop("all_finite"):
            bad = sorted(k for k, v in metrics.items() if not np.isfinite(v)) or ["parameters"]
            raise NonFiniteError(
                f"The update at iteration {self.iterations} (after {self.total_steps} env steps) produced "
                f"non-finite values in: {', '.join(bad)}. The update was undone: parameters and optimizer "
                f"state are as before it (the observation statistics and step counter include the batch), "
                f"and no checkpoint was written. Lower the learning rate or the trust region, or check the "
                f"rewards' scale."
            )
        self.iterations_variable.assign_add(1)
        if getattr(self, "optimizer", None) is not None:
            metrics["learning_rate"] = float(self.optimizer.learning_rate.numpy())
        used = batch["mask"] > 0
        metrics["explained_variance"] = _explained_variance(batch["values"][used], batch["returns"][used])
        return metrics

    def _recomputes_advantages(self) -> bool:
        """Whether the update re-estimates advantages, so its batch also holds the `time_major` fields."""
        return False

    def _compiled_update(self):
        """The compiled update to run on this batch (algorithms whose updates come in several kinds override it)."""
        return self._train_step

    def _before_update(self, steps_before: int) -> None:
        """Sets the annealed learning rate for a batch collected after `steps_before` env steps, if annealed."""
        if self.config.learning_rate_decay_steps > 0 or self.config.learning_rate_schedule == "linear":
            self._apply_learning_rate(steps_before)

    def _apply_learning_rate(self, steps_before: int | None = None) -> None:
        """Sets the `optimizer` attribute's rate (if there is one) to the config's, annealed for a batch
        collected after `steps_before` env steps (default: all so far).

        Called after a restore too: the optimizer's rate variable is checkpointed, and a run may continue
        with another rate."""
        optimizer = getattr(self, "optimizer", None)
        if optimizer is not None:
            steps = self.total_steps if steps_before is None else steps_before
            optimizer.learning_rate.assign(self._learning_rate_now(steps))

    @staticmethod
    def _standardize(advantages: np.ndarray, mask: np.ndarray) -> np.ndarray:
        weights = mask / max(float(mask.sum()), 1.0)
        mean = float((advantages * weights).sum())
        std = float(np.sqrt(((advantages - mean) ** 2 * weights).sum()))
        return ((advantages - mean) / (std + 1e-8)).astype(np.float32)
