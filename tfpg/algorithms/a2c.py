"""Advantage actor-critic (synchronous, A2C)."""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from tfpg.agent import OnPolicyAgent
from tfpg.config import AgentConfig, hparam
from tfpg.losses import approximate_kl, masked_mean, policy_gradient_loss, value_loss
from tfpg.update import apply_gradients

# Keras adds ε inside the root; ε² there keeps the step lr·g/(√v + ε) within √2 of it for every v.
RMSPROP_EPSILON = 1e-5


@dataclasses.dataclass
class A2CConfig(AgentConfig):
    """A2C hyperparameters (defaults: short n-step batches from several envs)."""

    rollout_steps: int = hparam(8, "Environment steps per env copy in each batch (n of n-step).", low=1)
    gae_lambda: float = hparam(1.0, "GAE λ (1: n-step returns).", low=0.0, high=1.0)
    learning_rate: float = hparam(7e-4, "Learning rate of the optimizer.", low=0.0, low_open=True)
    optimizer: str = hparam("adam", "Adam (β 0.9, 0.999), or RMSprop without momentum: v ← ρv + (1 − ρ)g², "
                                     "θ ← θ − lr g / √(v + ε²), ρ 0.99, ε 1e-5.", choices=("adam", "rmsprop"))
    normalize_advantages: bool = hparam(False, "Standardise advantages within each batch.")
    value_coef: float = hparam(0.5, "Weight c_v of the value loss.", low=0.0)
    entropy_coef: float = hparam(0.0, "Weight c_e of the entropy bonus.", low=0.0)


class A2C(OnPolicyAgent):
    """Synchronous advantage actor-critic.

    One gradient step per batch on
    L = −E[log π(a|s) Â] + c_v E[(V(s) − R)²] − c_e E[H(π(·|s))]
    with Â from GAE(γ, λ) (λ = 1: n-step returns), global-norm clipping and
    Adam or RMSprop. See `A2CConfig` for the hyperparameters.

    Example:
        >>> agent = tfpg.A2C(seed=0)
        >>> history = agent.fit("CartPole-v1", steps=200_000, num_envs=8)
    """

    name = "a2c"
    config_class = A2CConfig
    launcher_num_envs = 8  # its batch is n steps of every copy: with one copy an update would see 8 samples

    def _build_training(self) -> dict:
        if self.config.optimizer == "rmsprop":
            self.optimizer = keras.optimizers.RMSprop(self.config.learning_rate, rho=0.99, epsilon=RMSPROP_EPSILON ** 2)
        else:
            self.optimizer = keras.optimizers.Adam(self.config.learning_rate)
        self._variables = self._trainable_variables()
        self.optimizer.build(self._variables)  # slot variables now, so a checkpoint can restore into them
        return {"optimizer": self.optimizer}

    def _losses(self, batch: dict, distribution=None, values=None) -> tuple[tf.Tensor, dict]:
        """The A2C loss and its parts, from a forward pass of the batch (done here if not given)."""
        if distribution is None:
            distribution, values = self._policy_and_values(batch["observations"])
        log_probs = distribution.log_prob(batch["actions"])
        mask = batch["mask"]
        policy_loss = policy_gradient_loss(log_probs, batch["advantages"], mask)
        critic_loss = value_loss(values, batch["returns"], mask)
        entropy = masked_mean(distribution.entropy(), mask)
        total = policy_loss + self.config.value_coef * critic_loss - self.config.entropy_coef * entropy
        return total, {"policy_loss": policy_loss, "value_loss": critic_loss, "entropy": entropy}

    def _update(self, batch: dict) -> dict:
        with tf.GradientTape() as tape:
            loss, metrics = self._losses(batch)
        gradients = tape.gradient(loss, self._variables)
        metrics["grad_norm"] = apply_gradients(self.optimizer, gradients, self._variables, self.config.max_grad_norm)
        metrics["approx_kl"] = self._approximate_kl(batch)
        return metrics

    def _approximate_kl(self, batch: dict) -> tf.Tensor:
        """E[log π_old − log π_new] on the batch, after the update."""
        new_log_probs = self.policy(batch["observations"]).log_prob(batch["actions"])
        return approximate_kl(batch["log_probs"], new_log_probs, batch["mask"])
