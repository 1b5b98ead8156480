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
from tfpg.optimizers import backtracking_line_search, full_step, trust_region_step
from tfpg.update import annealed, apply_gradients


@dataclasses.dataclass
class NPGConfig(AgentConfig):
    """Natural-gradient hyperparameters (shared by NPG and TRPO).

    Gaussian policies start with std ≈ 0.7 × the action half-range (log-std −0.36)
    rather than 1 ×: with std 1, every HalfCheetah-v5 seed ended near 1800, the mode
    in which the cheetah has flipped onto its back and runs upside down; with 0.7,
    six of ten seeds run upright, at a cost of 5-7% on Hopper and Walker2d. A
    smaller std (0.61) flips one seed in ten but costs TRPO's Hopper and Walker2d
    about a fifth, Walker2d below its published figure (benchmarks/RESULTS.md).
    """

    rollout_steps: int = hparam(1024, "Environment steps per env copy in each batch.", low=1)
    scale_rewards: bool = hparam(True, "Divide rewards by the running std of the discounted return.")
    initial_log_std: float = hparam(-0.36, "Initial log std of Gaussian policies, in units of the action "
                                           "half-range (high - low)/2 where finite (-0.36: std ≈ 0.7 × half-range).",
                                    low=-20.0, high=2.0)
    max_kl: float = hparam(0.01, "δ: the step is scaled so that ½ΔᵀFΔ = δ.", low=0.0, low_open=True)
    max_kl_schedule: str = hparam(
        "constant", "δ over training: constant, or linear: δ · max(0, 1 − s / H) for a batch collected after s "
        "env steps, H the step target of the fit call in progress (the launcher's --steps), or "
        "learning_rate_decay_steps if set.", choices=("constant", "linear"))
    cg_iterations: int = hparam(10, "Conjugate-gradient iterations for F⁻¹g.", low=1)
    cg_damping: float = hparam(0.1, "λ of the damped Fisher F + λI.", low=0.0)
    cg_residual_tolerance: float = hparam(1e-10, "CG stops once rᵀr falls below this.", low=0.0)
    value_function: str = hparam("trust_region", "Value fit: the trust-region Gauss-Newton step, or Adam "
                                 "regression.", choices=("trust_region", "regression"))
    learning_rate: float = hparam(1e-3, "Adam learning rate of the value regression (unused otherwise).",
                                  low=0.0, low_open=True)
    value_epochs: int = hparam(10, "Passes of the value regression over each batch.", low=1)
    value_minibatch_size: int = hparam(128, "Samples per value-regression step.", low=1)
    value_max_kl: float = hparam(0.01, "ε of the trust-region value step: mean(V − V_old)²/(2σ²) ≤ ε.",
                                 low=0.0, low_open=True)
    entropy_coef: float = hparam(0.0, "Weight c_e of the entropy bonus added to the surrogate E[r Â].", low=0.0)


class NPG(OnPolicyAgent):
    """Natural policy gradient (Kakade, 2002) with the natural step of TRPO's notes.

    With g = ∇_θ (E[r Â] + c_e E[H(π(·|s))]) at θ_old (c_e = 0 by default) and
    x ≈ (F + λI)⁻¹ g by conjugate gradient on Fisher-vector products, the step
    is Δ = sqrt(2δ / gᵀx) · x, so that the quadratic model of the KL, ½ΔᵀFΔ,
    equals δ (constant, or annealed to 0 over the run: `max_kl_schedule`).
    NPG always takes the step; TRPO (a subclass) differs only in `_accept_step`.

    The value function is fitted after the policy step, by default with the
    trust-region regression min E[(V_φ − R)²] s.t. E[(V_φ − V_old)²]/(2σ²) ≤ ε,
    σ² = E[(V_old − R)²], solved like the policy step with the Gauss-Newton
    matrix of the constraint (`value_function="trust_region"`), or by Adam
    regression on E[(V − R)²] (`value_function="regression"`).
    """

    name = "npg"
    config_class = NPGConfig

    def _build_training(self) -> dict:
        if self.config.shared_network:
            raise ValueError(f"{type(self).__name__} needs separate policy and value networks (the value "
                             f"fit would move the policy outside its trust region): set shared_network=False.")
        self._build_policy_snapshot()
        self._max_kl = tf.Variable(self.config.max_kl, trainable=False, dtype=tf.float32, name="max_kl")
        self._value_variables = self.value_model.trainable_variables
        if self.config.value_function == "trust_region":
            return {}  # no optimizer state to checkpoint, snapshot in every update, or log a rate for
        self.optimizer = keras.optimizers.Adam(self.config.learning_rate)
        self.optimizer.build(self._value_variables)  # slot variables now, so a checkpoint can restore into them
        return {"value_optimizer": self.optimizer}

    # ------------------------------------------------------------ policy step
    def _update(self, batch: dict) -> dict:
        config = self.config
        self._snapshot_policy()
        observations, actions, mask = batch["observations"], batch["actions"], batch["mask"]
        old_distribution = self.old_policy(observations)

        def surrogate():
            distribution = self.policy(observations)
            ratio = tf.exp(distribution.log_prob(actions) - batch["log_probs"])
            objective = masked_mean(ratio * batch["advantages"], mask)
            if config.entropy_coef:
                objective += config.entropy_coef * masked_mean(distribution.entropy(), mask)
            return objective

        def mean_kl():
            return masked_mean(tfp.distributions.kl_divergence(old_distribution, self.policy(observations)),
                               mask)

        step = trust_region_step(surrogate, mean_kl, self.policy.trainable_variables, self._max_kl,
                                 self._accept_step, config.cg_damping, config.cg_iterations,
                                 config.cg_residual_tolerance)
        distribution = self.policy(observations)
        metrics = {
            "policy_loss": -step["objective_before"],
            "surrogate_improvement": step["improvement"],
            "kl": step["divergence"],
            "approx_kl": approximate_kl(batch["log_probs"], distribution.log_prob(actions), mask),
            "entropy": masked_mean(distribution.entropy(), mask),
            "step_fraction": step["fraction"],
            "line_search_steps": step["tried"],
            "line_search_success": tf.cast(step["accepted"], tf.float32),
            "cg_iterations": step["cg_iterations"],
            "cg_residual": step["cg_residual"],
            "max_kl": tf.identity(self._max_kl),
        }
        metrics.update(self._fit_value(batch))
        return metrics

    def _prepare_update(self, steps_before: int) -> None:
        """Sets δ for this batch: the config's, annealed by `max_kl_schedule`."""
        config = self.config
        decay_steps = config.learning_rate_decay_steps if config.max_kl_schedule == "linear" else 0
        self._max_kl.assign(annealed(config.max_kl, config.max_kl_schedule, decay_steps, steps_before,
                                     self._step_target))

    def _accept_step(self, evaluate):
        """NPG takes the full natural step."""
        return full_step(evaluate)

    # ------------------------------------------------------------ value fit
    def _fit_value(self, batch: dict) -> dict:
        if self.config.value_function == "trust_region":
            return self._trust_region_value_step(batch)
        return self._regress_value(batch)

    def _value_minibatch(self, sample: dict) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = value_loss(self.value_model(sample["observations"]), sample["returns"], sample["mask"])
        gradients = tape.gradient(loss, self._value_variables)
        apply_gradients(self.optimizer, gradients, self._value_variables, self.config.max_grad_norm)
        return tf.stack([loss])

    def _regress_value(self, batch: dict) -> dict:
        fields = {k: batch[k] for k in ("observations", "returns", "mask")}
        minibatch_epochs(fields, self.config.value_epochs, self.config.value_minibatch_size, self.rng,
                         self._value_minibatch, 1, sequences=bool(self.state_sizes))
        loss = value_loss(self.value_model(batch["observations"]), batch["returns"], batch["mask"])
        return {"value_loss": loss, "value_step_accepted": tf.constant(1.0)}

    def _trust_region_value_step(self, batch: dict) -> dict:
        config = self.config
        observations, returns, mask = batch["observations"], batch["returns"], batch["mask"]
        old_values = tf.stop_gradient(self.value_model(observations))
        sigma2 = masked_mean(tf.square(old_values - returns), mask) + 1e-8

        def negative_loss():
            return -value_loss(self.value_model(observations), returns, mask)

        def divergence():
            return masked_mean(tf.square(self.value_model(observations) - old_values), mask) / (2.0 * sigma2)

        step = trust_region_step(
            negative_loss, divergence, self._value_variables, config.value_max_kl,
            lambda evaluate: backtracking_line_search(evaluate, config.value_max_kl),
            config.cg_damping, config.cg_iterations, config.cg_residual_tolerance,
        )
        return {"value_loss": -negative_loss(), "value_step_accepted": tf.cast(step["accepted"], tf.float32)}
