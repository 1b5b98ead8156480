"""Proximal policy optimisation: clipped surrogate, adaptive-KL and fixed-KL penalties."""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfpg.agent import OnPolicyAgent
from tfpg.config import AgentConfig, another_default, hparam
from tfpg.graph_advantages import generalized_advantages, standardized
from tfpg.minibatches import minibatch_epochs
from tfpg.networks import PolicyNetwork
from tfpg.recurrent import RECOMPUTE_REFUSAL
from tfpg.losses import (adapted_kl_coefficient, approximate_kl, clipped_surrogate_loss, clipped_value_loss,
                         kl_penalty_loss, masked_mean, value_loss)
from tfpg.update import apply_gradients

_METRICS = ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction")


@dataclasses.dataclass
class PPOConfig(AgentConfig):
    """PPO hyperparameters; defaults follow the PPO paper's MuJoCo settings except the initial std.

    Gaussian policies start with std ≈ 0.5 × the action half-range (log-std −0.69;
    0.5 on MuJoCo's [−1, 1] actions) rather than 1 ×: a smaller initial std, as
    Andrychowicz et al. (2021) recommend (TF-Agents' PPO starts at 0.35). On
    HalfCheetah-v5 every seed then left the ~1800 local optimum that std 1 stayed in,
    where the cheetah runs on its back (benchmarks/RESULTS.md).

    The learning rate falls linearly to 0 at the end of the run (`learning_rate_schedule`), as in
    OpenAI Baselines' PPO for MuJoCo. With a constant rate, the same Adam steps move a narrowing
    policy further and further: on Walker2d-v5 the KL per iteration grew to 0.06-0.08 by 1M steps, with
    half the samples clipped, and more seeds ended in the low mode; annealed, it stays near 0.01
    (benchmarks/RESULTS.md).
    """

    scale_rewards: bool = hparam(True, "Divide rewards by the running std of the discounted return.")
    learning_rate_schedule: str = another_default(AgentConfig, "learning_rate_schedule", "linear")
    initial_log_std: float = hparam(-0.69, "Initial log std of Gaussian policies, in units of the action "
                                           "half-range (high - low)/2 where finite (-0.69: std ≈ 0.5 × half-range).",
                                    low=-20.0, high=2.0)

    sequence_length: int = another_default(AgentConfig, "sequence_length", 128)

    loss: str = hparam("clip", "Surrogate: clipped ratio, or a KL penalty with adaptive or fixed β.",
                       choices=("clip", "adaptive_kl", "fixed_kl"))
    clip_range: float = hparam(0.2, "ε of the clipped ratio (also the clip-fraction threshold).",
                               low=0.0, low_open=True)
    epochs: int = hparam(10, "Passes over each batch.", low=1)
    minibatch_size: int = hparam(64, "Samples per gradient step.", low=1)
    value_coef: float = hparam(0.5, "Weight c_v of the value loss.", low=0.0)
    entropy_coef: float = hparam(0.0, "Weight c_e of the entropy bonus.", low=0.0)
    value_clip_range: float = hparam(0.0, "Clip value updates to ±this around the old values (0: off).",
                                     low=0.0)
    kl_target: float = hparam(0.01, "d_targ of the adaptive-KL rule.", low=0.0, low_open=True)
    initial_kl_beta: float = hparam(1.0, "β₀ of the KL penalty.", low=0.0)
    target_kl: float = hparam(0.0, "Stop the epoch loop once an epoch's approx KL exceeds 1.5× this "
                                   "(0: never).", low=0.0)
    recompute_advantages: bool = hparam(False, "Before every epoch, re-estimate the values, GAE advantages and "
                                               "value targets with the critic trained so far.")

    def validate(self) -> None:
        super().validate()
        if self.recompute_advantages and self.recurrent != "none":
            raise ValueError(RECOMPUTE_REFUSAL)


class PPO(OnPolicyAgent):
    """Proximal policy optimisation (Schulman et al., 2017).

    With r = π(a|s)/π_old(a|s) and Â from GAE(γ, λ):

    - `loss="clip"`: L = E[min(r Â, clip(r, 1 − ε, 1 + ε) Â)];
    - `loss="adaptive_kl"`: L = E[r Â] − β E[KL(π_old‖π)], and after each
      update β ← 2β if KL > 1.5 d_targ, β ← β/2 if KL < d_targ/1.5;
    - `loss="fixed_kl"`: the same penalty with β kept fixed.

    With `recompute_advantages`, every epoch starts by computing V(s_t) and
    V(s_{t+1}) with the current critic and Â_t, R_t = Â_t + V(s_t) anew by
    GAE(γ, λ) over the batch's time-major rewards (standardised again if
    `normalize_advantages`); π_old, the log-probabilities and the values a
    clipped value loss is centred on stay those of the collection
    (Andrychowicz et al., 2021, recommend the recomputation).

    The objective (minus c_v times the value loss, plus c_e times the
    entropy) is maximised by Adam over `epochs` passes of shuffled minibatches;
    all epochs, minibatches and the shuffling run inside one `tf.function`
    call per batch. See `PPOConfig` for the hyperparameters.
    """

    name = "ppo"
    config_class = PPOConfig

    def _build_training(self) -> dict:
        config = self.config
        self.optimizer = keras.optimizers.Adam(config.learning_rate)
        self._variables = self._trainable_variables()
        self.optimizer.build(self._variables)  # slot variables now, so a checkpoint can restore into them
        self._build_policy_snapshot()
        self.kl_beta = tf.Variable(config.initial_kl_beta, dtype=tf.float32, trainable=False, name="kl_beta")
        # A recurrent layer runs a loop over each sequence's steps; XLA compiles a minibatch's loops, forward and
        # backward, into one program, which took a third of the time per minibatch (benchmarks/RESULTS.md).
        # Only for tfpg's own networks: a user's model may hold operations XLA cannot compile.
        compiles = bool(self.state_sizes) and isinstance(self.policy, PolicyNetwork)
        self._minibatch_step = tf.function(self._train_minibatch, jit_compile=True) if compiles \
            else self._train_minibatch
        return {"optimizer": self.optimizer, "kl_beta": self.kl_beta}

    def _losses(self, batch: dict) -> tuple[tf.Tensor, tf.Tensor]:
        config = self.config
        mask = batch["mask"]
        distribution, values = self._policy_and_values(batch["observations"])
        log_probs = distribution.log_prob(batch["actions"])
        clip_loss, clip_fraction = clipped_surrogate_loss(log_probs, batch["log_probs"], batch["advantages"],
                                                          config.clip_range, mask)
        if config.loss == "clip":
            policy_loss = clip_loss
        else:
            kl = tfp.distributions.kl_divergence(self.old_policy(batch["observations"]), distribution)
            policy_loss = kl_penalty_loss(log_probs, batch["log_probs"], batch["advantages"], kl,
                                          self.kl_beta, mask)
        if config.value_clip_range > 0:
            critic_loss = clipped_value_loss(values, batch["values"], batch["returns"],
                                             config.value_clip_range, mask)
        else:
            critic_loss = value_loss(values, batch["returns"], mask)
        entropy = masked_mean(distribution.entropy(), mask)
        total = policy_loss + config.value_coef * critic_loss - config.entropy_coef * entropy
        kl_estimate = approximate_kl(batch["log_probs"], log_probs, mask)
        return total, tf.stack([policy_loss, critic_loss, entropy, kl_estimate, clip_fraction])

    def _train_minibatch(self, sample: dict) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss, metrics = self._losses(sample)
        gradients = tape.gradient(loss, self._variables)
        apply_gradients(self.optimizer, gradients, self._variables, self.config.max_grad_norm)
        return metrics

    def _recomputes_advantages(self) -> bool:
        return self.config.recompute_advantages

    def _gradient_rows(self) -> int:
        return self.config.minibatch_size

    def _with_current_advantages(self, batch: dict, time_major: dict) -> dict:
        """`batch` with its advantages and value targets estimated anew by the current critic."""
        config = self.config
        shape = tf.shape(time_major["rewards"])
        values = tf.reshape(self.value_model(batch["observations"]), shape)
        next_values = tf.reshape(self.value_model(time_major["final_observations"]), shape)
        advantages, returns = generalized_advantages(time_major["rewards"], values, next_values,
                                                     time_major["terminated"], time_major["truncated"],
                                                     config.gamma, config.gae_lambda)
        advantages = tf.reshape(advantages, [-1])
        if config.normalize_advantages:
            advantages = standardized(advantages, batch["mask"])
        return {**batch, "advantages": advantages, "returns": tf.reshape(returns, [-1])}

    def _update(self, batch: dict) -> dict:
        config = self.config
        self._snapshot_policy()
        stop = None
        if config.target_kl > 0:
            stop = lambda means: means[_METRICS.index("approx_kl")] > 1.5 * config.target_kl  # noqa: E731
        time_major = batch.get("time_major")
        batch = {name: value for name, value in batch.items() if name != "time_major"}
        refresh = None if time_major is None else lambda flat: self._with_current_advantages(flat, time_major)
        means, epochs_run = minibatch_epochs(batch, config.epochs, config.minibatch_size, self.rng,
                                             self._minibatch_step, len(_METRICS), stop, refresh,
                                             sequences=bool(self.state_sizes))
        kl = masked_mean(tfp.distributions.kl_divergence(self.old_policy(batch["observations"]),
                                                         self.policy(batch["observations"])), batch["mask"])
        if config.loss == "adaptive_kl":
            self.kl_beta.assign(adapted_kl_coefficient(self.kl_beta, kl, config.kl_target))
        result = {name: means[i] for i, name in enumerate(_METRICS)}
        result.update({"kl": kl, "kl_beta": tf.identity(self.kl_beta), "epochs": epochs_run})
        return result
