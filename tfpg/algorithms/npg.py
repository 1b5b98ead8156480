"""Natural policy gradient, with the value function fitted by regression or a trust-region step."""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfpg.agent import OnPolicyAgent
from tfpg.config import AgentConfig, hparam
from tfpg.losses import approximate_kl, masked_mean, value_loss
from tfpg.minibatches import minibatch_epochs
from tfpg.optimizers import (assign_flat, backtracking_line_search, conjugate_gradient, fisher_vector_product,
                             flat_gradient, flatten)


@dataclasses.dataclass
class NPGConfig(AgentConfig):
    """Natural-gradient hyperparameters (shared by NPG and TRPO)."""

    rollout_steps: int = hparam(1024, "Environment steps per env copy in each batch.", low=1)
    max_kl: float = hparam(0.01, "δ: the step is scaled so that ½ΔᵀFΔ = δ.", low=0.0, low_open=True)
    cg_iterations: int = hparam(10, "Conjugate-gradient iterations for F⁻¹g.", low=1)
    cg_damping: float = hparam(0.1, "λ of the damped Fisher F + λI.", low=0.0)
    cg_residual_tolerance: float = hparam(1e-10, "CG stops once rᵀr falls below this.", low=0.0)
    value_function: str = hparam("regression", "Value fit: Adam regression, or the trust-region "
                                 "Gauss-Newton step.", choices=("regression", "trust_region"))
    learning_rate: float = hparam(1e-3, "Adam learning rate of the value regression.", low=0.0,
                                  low_open=True)
    value_epochs: int = hparam(10, "Passes of the value regression over each batch.", low=1)
    value_minibatch_size: int = hparam(128, "Samples per value-regression step.", low=1)
    value_max_kl: float = hparam(0.01, "ε of the trust-region value step: mean(V − V_old)²/(2σ²) ≤ ε.",
                                 low=0.0, low_open=True)


class NPG(OnPolicyAgent):
    """Natural policy gradient (Kakade, 2002) with the natural step of TRPO's notes.

    With g = ∇_θ E[r Â] at θ_old and x ≈ (F + λI)⁻¹ g by conjugate gradient on
    Fisher-vector products, the step is Δ = sqrt(2δ / gᵀx) · x, so that the
    quadratic model of the KL, ½ΔᵀFΔ, equals δ. NPG always takes the step;
    TRPO (a subclass) differs only in `_accept_step`.

    The value function is fitted after the policy step, either by Adam
    regression on E[(V − R)²] (`value_function="regression"`) or by the
    trust-region regression min E[(V_φ − R)²] s.t. E[(V_φ − V_old)²]/(2σ²) ≤ ε,
    σ² = E[(V_old − R)²], solved like the policy step with the Gauss-Newton
    matrix of the constraint (`value_function="trust_region"`).
    """

    name = "npg"
    config_class = NPGConfig

    def _build_training(self) -> dict:
        self._build_policy_snapshot()
        self.optimizer = keras.optimizers.Adam(self.config.learning_rate)
        self._value_variables = self.value_model.trainable_variables
        self._build_optimizer(self.optimizer, self._value_variables)
        return {"value_optimizer": self.optimizer}

    # ------------------------------------------------------------ policy step
    def _update(self, batch: dict) -> dict:
        config = self.config
        self._snapshot_policy()
        observations, actions, mask = batch["observations"], batch["actions"], batch["mask"]
        variables = self.policy.trainable_variables
        old_distribution = self.old_policy(observations)

        def surrogate():
            log_probs = self.policy(observations).log_prob(actions)
            return masked_mean(tf.exp(log_probs - batch["log_probs"]) * batch["advantages"], mask)

        def mean_kl():
            return masked_mean(tfp.distributions.kl_divergence(old_distribution, self.policy(observations)),
                               mask)

        with tf.GradientTape() as tape:
            surrogate_before = surrogate()
        gradient = flat_gradient(tape, surrogate_before, variables)
        direction, cg_iterations, cg_residual = conjugate_gradient(
            lambda v: fisher_vector_product(mean_kl, variables, v, config.cg_damping),
            gradient, config.cg_iterations, config.cg_residual_tolerance,
        )
        step = tf.sqrt(2.0 * config.max_kl / (tf.reduce_sum(gradient * direction) + 1e-12)) * direction
        theta_old = flatten(variables)

        def evaluate(fraction):
            assign_flat(variables, theta_old + fraction * step)
            return surrogate() - surrogate_before, mean_kl()

        accepted, fraction, tried, improvement, kl = self._accept_step(evaluate)
        if not accepted:
            assign_flat(variables, theta_old)
            improvement, kl = tf.constant(0.0), tf.constant(0.0)
        distribution = self.policy(observations)
        metrics = {
            "policy_loss": -surrogate_before,
            "surrogate_improvement": improvement,
            "kl": kl,
            "approx_kl": approximate_kl(batch["log_probs"], distribution.log_prob(actions), mask),
            "entropy": masked_mean(distribution.entropy(), mask),
            "step_fraction": fraction,
            "line_search_steps": tried,
            "line_search_success": tf.cast(accepted, tf.float32),
            "cg_iterations": cg_iterations,
            "cg_residual": cg_residual,
        }
        metrics.update(self._fit_value(batch))
        return metrics

    def _accept_step(self, evaluate):
        """NPG takes the full natural step: returns (accepted, fraction, tried, improvement, kl)."""
        improvement, kl = evaluate(tf.constant(1.0))
        return tf.constant(True), tf.constant(1.0), tf.constant(1), improvement, kl

    # ------------------------------------------------------------ value fit
    def _fit_value(self, batch: dict) -> dict:
        if self.config.value_function == "trust_region":
            return self._trust_region_value_step(batch)
        return self._regress_value(batch)

    def _value_minibatch(self, sample: dict) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = value_loss(self.value_model(sample["observations"]), sample["returns"], sample["mask"])
        gradients = tape.gradient(loss, self._value_variables)
        self._apply_gradients(self.optimizer, gradients, self._value_variables)
        return tf.stack([loss])

    def _regress_value(self, batch: dict) -> dict:
        fields = {k: batch[k] for k in ("observations", "returns", "mask")}
        minibatch_epochs(fields, self.config.value_epochs, self.config.value_minibatch_size, self.rng,
                         self._value_minibatch, 1)
        loss = value_loss(self.value_model(batch["observations"]), batch["returns"], batch["mask"])
        return {"value_loss": loss, "value_step_accepted": tf.constant(1.0)}

    def _trust_region_value_step(self, batch: dict) -> dict:
        config = self.config
        observations, returns, mask = batch["observations"], batch["returns"], batch["mask"]
        variables = self._value_variables
        old_values = tf.stop_gradient(self.value_model(observations))
        sigma2 = masked_mean(tf.square(old_values - returns), mask) + 1e-8

        def loss():
            return value_loss(self.value_model(observations), returns, mask)

        def divergence():
            return masked_mean(tf.square(self.value_model(observations) - old_values), mask) / (2.0 * sigma2)

        with tf.GradientTape() as tape:
            loss_before = loss()
        descent = -flat_gradient(tape, loss_before, variables)
        direction, _, _ = conjugate_gradient(
            lambda v: fisher_vector_product(divergence, variables, v, config.cg_damping),
            descent, config.cg_iterations, config.cg_residual_tolerance,
        )
        step = tf.sqrt(2.0 * config.value_max_kl / (tf.reduce_sum(descent * direction) + 1e-12)) * direction
        phi_old = flatten(variables)

        def evaluate(fraction):
            assign_flat(variables, phi_old + fraction * step)
            return loss_before - loss(), divergence()

        accepted, _, _, _, _ = backtracking_line_search(evaluate, config.value_max_kl)
        if not accepted:
            assign_flat(variables, phi_old)
        return {"value_loss": loss(), "value_step_accepted": tf.cast(accepted, tf.float32)}
