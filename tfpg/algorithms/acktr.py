"""ACKTR: A2C with K-FAC natural-gradient steps for the actor and the critic."""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from tfpg.algorithms.a2c import A2C, A2CConfig
from tfpg.config import hparam
from tfpg.losses import approximate_kl
from tfpg.optimizers.kfac import KFAC


@dataclasses.dataclass
class ACKTRConfig(A2CConfig):
    """ACKTR hyperparameters; defaults from the ACKTR paper's continuous-control settings."""

    rollout_steps: int = hparam(2500, "Environment steps per env copy in each batch.", low=1)
    gae_lambda: float = hparam(0.97, "GAE λ.", low=0.0, high=1.0)
    normalize_advantages: bool = hparam(True, "Standardise advantages within each batch.")
    learning_rate: float = hparam(0.25, "η_max: the largest K-FAC step size.", low=0.0, low_open=True)
    max_kl: float = hparam(0.002, "δ: steps are scaled so that their K-FAC KL is at most δ.",
                           low=0.0, low_open=True)
    kfac_damping: float = hparam(0.01, "Tikhonov damping λ of the Kronecker factors.", low=0.0)
    kfac_decay: float = hparam(0.99, "Running-average decay of the Kronecker factors.", low=0.0, high=1.0)
    kfac_inverse_every: int = hparam(10, "Updates between refreshes of the factor inverses.", low=1)
    momentum: float = hparam(0.0, "Momentum of the K-FAC step (>0 lets a step exceed the KL bound).",
                             low=0.0, high=1.0)
    max_grad_norm: float = hparam(0.0, "Global gradient-norm clip before preconditioning; 0 disables it.",
                                  low=0.0)
    value_fisher_coef: float = hparam(1.0, "Weight of the critic's Gauss-Newton Fisher loss.", low=0.0)


class ACKTR(A2C):
    """Actor-critic using Kronecker-factored trust region (Wu et al., 2017).

    The A2C loss, with its gradient preconditioned by K-FAC over every Dense
    layer of the policy and the value network. The policy's factors come from
    log π(ã|s) with ã SAMPLED from π; the critic's from the Gauss-Newton
    Fisher of a unit-variance Gaussian output, log N(ỹ | V(s), 1) with
    ỹ ~ N(V(s), 1). Both are gathered in the same forward pass as the gradient.
    Each step's size is min(η_max, sqrt(2δ / ΔᵀF̂Δ)).
    """

    name = "acktr"
    config_class = ACKTRConfig

    def _build_training(self) -> dict:
        config = self.config
        if config.shared_network:
            raise ValueError("ACKTR needs separate policy and value networks: set shared_network=False.")
        if config.learning_rate_decay_steps:
            raise ValueError("ACKTR scales every step by its KL bound; learning_rate_decay_steps must be 0.")
        layers = [*self.policy.hidden, self.policy.head.projection, *self.value_model.hidden,
                  self.value_model.output_layer]
        self._variables = self._trainable_variables()
        self.kfac = KFAC(layers, self._variables, learning_rate=config.learning_rate, max_kl=config.max_kl,
                         damping=config.kfac_damping, decay=config.kfac_decay,
                         inverse_update_every=config.kfac_inverse_every, momentum=config.momentum)
        return {"kfac": self.kfac}

    def _update(self, batch: dict) -> dict:
        seed = tf.cast(self.rng.make_seeds(2), tf.int32)
        with tf.GradientTape(persistent=True) as tape:
            with self.kfac.capture(tape):
                distribution = self.policy(batch["observations"])
                values = self.value_model(batch["observations"])
            loss, metrics = self._losses(batch, distribution, values)
            sampled_actions = tf.stop_gradient(distribution.sample(seed=seed[:, 0]))
            sampled_targets = tf.stop_gradient(values + tf.random.stateless_normal(tf.shape(values), seed[:, 1]))
            fisher_loss = tf.reduce_sum(distribution.log_prob(sampled_actions)) - \
                self.config.value_fisher_coef * 0.5 * tf.reduce_sum(tf.square(sampled_targets - values))
        gradients = tape.gradient(loss, self._variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        self.kfac.update_factors(tape.gradient(fisher_loss, self.kfac.probes()))
        del tape
        metrics["grad_norm"] = tf.linalg.global_norm(gradients)
        if self.config.max_grad_norm > 0:
            gradients, _ = tf.clip_by_global_norm(gradients, self.config.max_grad_norm, metrics["grad_norm"])
        metrics.update(self.kfac.apply_gradients(gradients))
        new_log_probs = self.policy(batch["observations"]).log_prob(batch["actions"])
        metrics["approx_kl"] = approximate_kl(batch["log_probs"], new_log_probs, batch["mask"])
        return metrics
