"""ACKTR: A2C with K-FAC natural-gradient steps for the actor and the critic."""

from __future__ import annotations

import contextlib
import dataclasses
import functools

import tensorflow as tf
import tensorflow_probability as tfp

from tfpg.algorithms.a2c import A2C, A2CConfig
from tfpg.compiled import compiled
from tfpg.config import hparam
from tfpg.losses import masked_mean
from tfpg.networks import PolicyNetwork, ValueNetwork
from tfpg.optimizers.fisher import fisher_vector_product
from tfpg.optimizers.kfac import KFAC, registrable_layers


@dataclasses.dataclass
class ACKTRConfig(A2CConfig):
    """ACKTR hyperparameters; defaults from the ACKTR paper's continuous-control settings except δ.

    Also not from the paper: the factor statistics are gathered on every 2nd
    update (`kfac_statistics_every`), which halves their cost and on MuJoCo
    learned as well as every update (benchmarks/RESULTS.md).

    The paper's δ = 0.002 bounds K-FAC's factored estimate of each step's KL,
    which on Hopper-v5 was a median 10-16x below the exact KL; tfpg bounds the
    quadratic model of the exact Fisher along the step instead (within about
    10% of the exact KL there), and δ = 0.01 gives steps of the size its
    earlier exact-KL shrink to δ gave, with which the returns in
    benchmarks/RESULTS.md were measured.
    """

    rollout_steps: int = hparam(2500, "Environment steps per env copy in each batch.", low=1)
    gae_lambda: float = hparam(0.97, "GAE λ.", low=0.0, high=1.0)
    normalize_advantages: bool = hparam(True, "Standardise advantages within each batch.")
    learning_rate: float = hparam(0.25, "η_max: the largest K-FAC step size.", low=0.0, low_open=True)
    max_kl: float = hparam(0.01, "δ: the policy step's KL under the exact Fisher's quadratic model is at most "
                                 "δ (a step whose exact KL exceeds 1.5δ is shrunk to δ).", low=0.0, low_open=True)
    kfac_damping: float = hparam(0.01, "Tikhonov damping λ of the Kronecker factors.", low=0.0)
    kfac_decay: float = hparam(0.99, "Running-average decay of the Kronecker factors.", low=0.0, high=1.0)
    kfac_inverse_every: int = hparam(10, "Updates between refreshes of the factor inverses.", low=1)
    momentum: float = hparam(0.0, "Momentum of the K-FAC step (>0 lets a step exceed the KL bound).",
                             low=0.0, high=1.0)
    max_grad_norm: float = hparam(0.0, "Global gradient-norm clip before preconditioning; 0 disables it.",
                                  low=0.0)
    value_max_kl: float = hparam(3.0, "δ_V of the critic's own trust region: ½E[(ΔV)²] ≤ δ_V per step.",
                                 low=0.0, low_open=True)
    kfac_statistics_samples: int = hparam(
        0, "Kronecker-factor statistics from every sample, in the gradient's forward pass (0), or from an "
        "evenly strided subset of at most this many samples, in a cheaper pass of its own.", low=0)
    kfac_statistics_every: int = hparam(
        2, "Gather the Kronecker-factor statistics on every k-th update only (the running average then "
        "decays by kfac_decay^k per gathering, spanning the same number of updates); 1: every update.", low=1)

    def validate(self) -> None:
        super().validate()
        if self.recurrent != "none":
            raise ValueError(f"ACKTR preconditions Dense and Conv2D layers with K-FAC and has no Kronecker factors "
                             f"for the {self.recurrent.upper()} cell's kernel and recurrent kernel; "
                             f"recurrent={self.recurrent!r} is refused. Use A2C, PPO, NPG or TRPO for a recurrent "
                             f"policy.")


class ACKTR(A2C):
    """Actor-critic using Kronecker-factored trust region (Wu et al., 2017).

    The A2C loss, with its gradient preconditioned by K-FAC over every Dense
    layer of the policy and the value network. The Gaussian policy's output
    factors are the exact expectation Jᵀ Σ⁻¹ J of the sampled ones (other
    policies: from log π(ã|s) with ã SAMPLED from π); the critic's are the Gauss-Newton
    Fisher of a unit-variance Gaussian output, log N(ỹ | V(s), 1), in
    expectation over ỹ ~ N(V(s), 1): G = E[J Jᵀ] from the Jacobian rows
    J = ∂V/∂s, which also give the critic's loss gradient, so its backward
    pass is shared. Both are gathered over the whole batch in the gradient's
    forward pass, or, with `kfac_statistics_samples` > 0, on an evenly
    strided subset in a smaller pass of their own (cheaper updates; on MuJoCo
    a 256-sample subset learned worse, see benchmarks/RESULTS.md), on every
    `kfac_statistics_every`-th update: every 2nd by default, which on MuJoCo
    learned as well as every update (10 seeds) at a lower cost per update.
    The critic's step size is min(η_max, sqrt(2δ_V / ΔᵀĜΔ)). The policy's is
    min(η_max, sqrt(2δ / ΔᵀFΔ)) with the EXACT Fisher F along the K-FAC direction
    (one Fisher-vector product on the batch): on Hopper-v5 the factored ΔᵀF̂Δ
    was a median 10-17x below ΔᵀFΔ, because the running-average factors lag a
    curvature that grows during training and the block-diagonal model drops
    the terms between layers (benchmarks/RESULTS.md). The state-independent
    log-std's Fisher block is its exact 2I. A step whose exact KL still
    exceeds 1.5δ is shrunk to δ.
    """

    name = "acktr"
    config_class = ACKTRConfig

    def _check_recurrent_support(self) -> None:
        raise ValueError("ACKTR preconditions Dense and Conv2D layers with K-FAC and has no Kronecker factors for a "
                         "recurrent model's state; a recurrent policy (one that declares a state_size) is refused. "
                         "Use A2C, PPO, NPG or TRPO for a recurrent policy.")

    def _build_training(self) -> dict:
        config = self.config
        if config.shared_network:
            raise ValueError("ACKTR needs separate policy and value networks: set shared_network=False.")
        if config.learning_rate_decay_steps or config.learning_rate_schedule != "constant":
            raise ValueError("ACKTR scales every step by its KL bound, so its rate is not annealed: set "
                             "learning_rate_schedule='constant' and learning_rate_decay_steps=0.")
        shared = dict(learning_rate=config.learning_rate, damping=config.kfac_damping, decay=config.kfac_decay,
                      statistics_every=config.kfac_statistics_every, inverse_update_every=config.kfac_inverse_every,
                      momentum=config.momentum)
        self._policy_variables = self.policy.trainable_variables
        self._gaussian_policy = bool(self._log_std_fisher())
        self._value_variables = self.value_model.trainable_variables
        self.kfac = KFAC(self._kfac_layers(self.policy), self._policy_variables, max_kl=config.max_kl,
                         diagonal_fisher=self._log_std_fisher(), name="kfac", **shared)
        self.value_kfac = KFAC(self._kfac_layers(self.value_model), self._value_variables,
                               max_kl=config.value_max_kl, name="value_kfac", **shared)
        self._check_capture()
        self._update_without_statistics = None
        return {"kfac": self.kfac, "value_kfac": self.value_kfac}

    def _log_std_fisher(self) -> dict:
        """The exact Fisher block of tfpg's Gaussian log-std, 2I: E[(∂ log N(a|μ,σ)/∂ log σ)²] = E[(z² − 1)²] = 2."""
        log_std = getattr(getattr(self.policy, "head", None), "log_std", None) \
            if isinstance(self.policy, PolicyNetwork) else None
        return {id(log_std): 2.0} if log_std is not None else {}

    def _curvature_along(self, distribution, observations, mask) -> callable:
        """vᵀFv under the exact Fisher of the policy at its current variables, F the Hessian of the mean
        KL(π_current ‖ π_θ) (`distribution` is π_current's output, a constant for the products' tapes)."""
        def mean_kl():
            return masked_mean(tfp.distributions.kl_divergence(distribution, self.policy(observations)), mask)

        def curvature(directions: list) -> tf.Tensor:
            vector = tf.concat([tf.reshape(direction, [-1]) for direction in directions], axis=0)
            return tf.reduce_sum(vector * fisher_vector_product(mean_kl, self._policy_variables, vector))

        return curvature

    @staticmethod
    def _kfac_layers(model) -> list:
        """The Dense layers K-FAC preconditions; tfpg's own MLPs list them in the order their factors are saved."""
        if type(model) is PolicyNetwork and model.features is None:
            return [*model.hidden, model.head.projection]
        if type(model) is ValueNetwork and model.features is None:
            return [*model.hidden, model.output_layer]
        return registrable_layers(model)

    def _check_capture(self) -> None:
        """One captured forward pass when the agent is built, so a model K-FAC cannot follow is refused now."""
        observations = self.observation_spec.example_batch(2)
        with tf.GradientTape() as tape:
            with self._capture(tape):
                self.policy(observations)
                self.value_model(observations)
        self.kfac.pre_activations()
        self.value_kfac.pre_activations()

    def _fisher_targets(self, distribution, values: tf.Tensor, seed: tf.Tensor) -> list[tf.Tensor]:
        """Scalars whose per-sample gradients w.r.t. the pre-activations give the Fisher's G factors:
        [policy target 0 + Σᵢ V(sᵢ), policy target 1, ...], the outer products of each target's rows summed.

        tfpg's diagonal Gaussian policy (state-independent σ) has one target per action dimension k,
        Σᵢ μₖ(sᵢ)/σₖ: its per-sample rows are Jₖ/σₖ (Jₖ = ∂μₖ/∂s), and Σₖ Jₖᵀ Jₖ/σₖ² = Jᵀ Σ⁻¹ J is the
        expectation over ã ~ π of the sampled g gᵀ, g = ∂ log π(ã|s)/∂s: the exact Fisher, without sampling
        it. Other policies have one target, Σᵢ log π(ãᵢ|sᵢ) with ãᵢ ~ π(·|sᵢ) sampled and held fixed.

        The gradient of Σᵢ V(sᵢ) w.r.t. the critic's pre-activations is the Jacobian row J of V, whose
        E[J Jᵀ] is the critic's Gauss-Newton G (for log N(ỹ | V, 1), E over ỹ ~ N(V, 1) of (ỹ − V)² J Jᵀ =
        J Jᵀ, likewise exact).
        """
        value_target = tf.reduce_sum(values)
        if self._gaussian_policy:
            means = distribution.distribution.loc
            ratios = tf.reshape(means / tf.stop_gradient(distribution.distribution.scale), [tf.shape(means)[0], -1])
            per_dimension = [tf.reduce_sum(ratios[:, k]) for k in range(self._action_size)]
            return [per_dimension[0] + value_target, *per_dimension[1:]]
        sampled_actions = tf.stop_gradient(distribution.sample(seed=seed))
        return [tf.reduce_sum(distribution.log_prob(sampled_actions)) + value_target]

    def _fisher_rows(self, tape: tf.GradientTape, targets: list) -> list:
        """Per registered layer (policy's, then critic's), the rows of `targets` (several per policy layer)."""
        first = tape.gradient(targets[0], self.kfac.pre_activations() + self.value_kfac.pre_activations())
        more = [tape.gradient(target, self.kfac.pre_activations()) for target in targets[1:]]
        count = len(self.kfac.layers)
        policy = [[first[layer], *(rows[layer] for rows in more)] for layer in range(count)]
        return policy + first[count:]

    @staticmethod
    def _used_rows(batch: dict) -> dict:
        """The batch without its masked-out rows, so no statistic needs per-sample weights."""
        used = tf.where(batch["mask"] > 0)[:, 0]
        return tf.nest.map_structure(lambda values: tf.gather(values, used), batch)

    def _capture(self, tape: tf.GradientTape, policy: bool = True) -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        if policy:
            stack.enter_context(self.kfac.capture(tape))
        stack.enter_context(self.value_kfac.capture(tape))
        return stack

    def _fold_factor_statistics(self, rows: list) -> None:
        self.kfac.update_factors(rows[:len(self.kfac.layers)])
        self.value_kfac.update_factors(rows[len(self.kfac.layers):])

    def _update_factors_on_subset(self, batch: dict, seed: tf.Tensor) -> None:
        """Factor statistics from every k-th sample, k = ⌈n / kfac_statistics_samples⌉, in a separate pass."""
        count = tf.shape(batch["mask"])[0]
        stride = tf.maximum(1, -(-count // self.config.kfac_statistics_samples))
        subset = self._used_rows(tf.nest.map_structure(lambda values: values[::stride],
                                                       {name: batch[name] for name in ("observations", "mask")}))
        with tf.GradientTape(persistent=True) as tape:
            with self._capture(tape):
                distribution = self.policy(subset["observations"])
                values = self.value_model(subset["observations"])
            targets = self._fisher_targets(distribution, values, seed)
        self._fold_factor_statistics(self._fisher_rows(tape, targets))
        del tape

    def _compiled_update(self):
        """The update with factor statistics on gathering updates, the one without them otherwise."""
        if self.config.kfac_statistics_every == 1 or bool(self.kfac.gathers_statistics()):
            return self._train_step
        if self._update_without_statistics is None:
            self._update_without_statistics = compiled(
                functools.partial(self._transactional_update, gather_statistics=False),
                input_signature=self._train_step.input_signature)
        return self._update_without_statistics

    def _update(self, batch: dict, gather_statistics: bool = True) -> dict:
        seed = tf.cast(self.rng.make_seeds(1)[:, 0], tf.int32)
        on_subset = gather_statistics and self.config.kfac_statistics_samples > 0
        in_gradient_pass = gather_statistics and not on_subset
        if on_subset:
            self._update_factors_on_subset(batch, seed)
        batch = self._used_rows(batch)
        with tf.GradientTape(persistent=True) as tape:
            with self._capture(tape, policy=in_gradient_pass):
                distribution = self.policy(batch["observations"])
                values = self.value_model(batch["observations"])
            loss, metrics = self._losses(batch, distribution, values)
            targets = self._fisher_targets(distribution, values, seed) if in_gradient_pass \
                else [tf.reduce_sum(values)]
        policy_gradients = tape.gradient(loss, self._policy_variables,
                                         unconnected_gradients=tf.UnconnectedGradients.ZERO)
        # The critic's loss gradient comes from its Jacobians (one backward pass for it and for G).
        value_cotangents = tape.gradient(loss, values)
        if in_gradient_pass:
            rows = self._fisher_rows(tape, targets)
            self._fold_factor_statistics(rows)
            value_jacobians = rows[len(self.kfac.layers):]
        else:
            value_jacobians = tape.gradient(targets[0], self.value_kfac.pre_activations())
        by_id = self.value_kfac.output_weighted_gradients(value_jacobians, value_cotangents)
        if self.value_kfac.other_variables:  # outside Dense layers: their plain gradient, from the tape
            others = tape.gradient(loss, self.value_kfac.other_variables,
                                   unconnected_gradients=tf.UnconnectedGradients.ZERO)
            by_id.update({id(v): g for v, g in zip(self.value_kfac.other_variables, others)})
        del tape
        gradients = policy_gradients + [by_id[id(v)] for v in self._value_variables]
        metrics["grad_norm"] = tf.linalg.global_norm(gradients)
        if self.config.max_grad_norm > 0:
            gradients, _ = tf.clip_by_global_norm(gradients, self.config.max_grad_norm, metrics["grad_norm"])

        def step_kl():  # `distribution` is the policy before the step
            new_distribution = self.policy(batch["observations"])
            return masked_mean(tfp.distributions.kl_divergence(distribution, new_distribution), batch["mask"])

        metrics.update(self.kfac.apply_gradients(
            gradients[:len(self._policy_variables)], step_kl,
            self._curvature_along(distribution, batch["observations"], batch["mask"])))
        value_step = self.value_kfac.apply_gradients(gradients[len(self._policy_variables):])
        metrics.update({f"value_{name}": value for name, value in value_step.items()})
        metrics["approx_kl"] = self._approximate_kl(batch)
        return metrics
