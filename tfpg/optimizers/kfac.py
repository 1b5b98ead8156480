"""K-FAC: Kronecker-factored natural-gradient steps for explicitly registered Dense layers."""

from __future__ import annotations

import contextlib
from typing import Callable, Sequence

import keras
import tensorflow as tf

from tfpg.optimizers.kfac_blocks import block_for


def damped_inverses(a: tf.Tensor, g: tf.Tensor, damping: float) -> tuple[tf.Tensor, tf.Tensor]:
    """(A + π√λ I)⁻¹ and (G + √λ/π I)⁻¹ with the π-correction π = sqrt((tr A / dim A) / (tr G / dim G)).

    Splitting the Tikhonov damping λ this way keeps (A + π√λI) ⊗ (G + √λ/πI)
    close to A ⊗ G + λI while balancing the two factors' scales. Computed from
    eigendecompositions, so they stay symmetric positive definite.
    """
    a_scale = tf.linalg.trace(a) / tf.cast(tf.shape(a)[0], a.dtype)
    g_scale = tf.linalg.trace(g) / tf.cast(tf.shape(g)[0], g.dtype)
    pi = tf.sqrt(tf.maximum(a_scale, 1e-12) / tf.maximum(g_scale, 1e-12))
    root = tf.sqrt(damping)

    def inverse(matrix, shift):
        values, vectors = tf.linalg.eigh(matrix)
        values = tf.maximum(values, 0.0) + shift
        return (vectors / values) @ tf.transpose(vectors)

    return inverse(a, pi * root), inverse(g, root / pi)


def registrable_layers(model: keras.layers.Layer) -> list[keras.layers.Layer]:
    """The Dense and Conv2D layers of `model` (nested ones included, each once, in tracking order) for `KFAC`.

    Variables outside these layers are stepped with their plain gradient, which
    is meant for vectors (a state-independent log-std, normalisation scales); a
    layer holding a trainable matrix or larger that is neither would silently
    go unpreconditioned, so it is refused.

    Raises:
        ValueError: naming the first layer K-FAC cannot precondition.
    """
    layers = []
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if type(layer) in (keras.layers.Dense, keras.layers.Conv2D):
            layers.append(layer)
            continue
        for variable in getattr(layer, "_trainable_variables", []):
            if len(variable.shape) >= 2:
                raise ValueError(
                    f"K-FAC cannot precondition layer {layer.name!r} ({type(layer).__name__}, trainable "
                    f"{variable.path or variable.name} of shape {tuple(variable.shape)}): it preconditions "
                    f"keras.layers.Dense and Conv2D layers only. Use those in the model, or another algorithm."
                )
    return layers


class KFAC(tf.Module):
    """Kronecker-factored approximate curvature for Keras `Dense` and `Conv2D` layers.

    For a registered layer s = a W + b, with ā = [a, 1] and g = ∂ log p(ỹ|x)/∂s
    for targets ỹ SAMPLED from the model (the true Fisher), the Fisher block of
    W̄ = [W; b] is approximated by A ⊗ G with A = E[ā āᵀ] and G = E[g gᵀ],
    kept as exponential running averages in `tf.Variable`s, folded in every
    `statistics_every` steps (with decay β^k per fold for k = `statistics_every`,
    so the averages span the same number of steps). The natural
    direction of a gradient ∇W̄ is Δ = (A + π√λI)⁻¹ ∇W̄ (G + √λ/πI)⁻¹, with the
    inverses refreshed every `inverse_update_every` steps. The step
    θ ← θ − η Δ uses η = min(η_max, sqrt(2δ / ΔᵀF̂Δ)), ΔᵀF̂Δ = Σ tr(Δᵀ A Δ G),
    so the step's KL under the model stays near δ; optional momentum. K-FAC's
    curvature can underestimate the true one along Δ; given the exact mean KL
    of the step (`kl_fn`), a step whose KL exceeds 1.5δ is shrunk by sqrt(δ / KL),
    which brings its KL (quadratic in the step length) back to about δ.

    A `Conv2D` layer is the same over the rows of its input patches, one per
    sample and output position (KFC, see `tfpg.optimizers.kfac_blocks`): A is
    the mean of ā āᵀ over samples and positions, G = E[Σ_t g_t g_tᵀ].

    Variables outside registered layers take their gradient divided by their
    Fisher scale c (`diagonal_fisher`, default 1: the Fisher block is taken as
    c·I; a diagonal Gaussian's state-independent log-std has exactly 2I), scaled
    by the same η and counted in ΔᵀF̂Δ as c‖Δ‖².

    F̂'s block-diagonal Kronecker model describes the curvature along Δ poorly
    when the factors, running averages over past policies, lag a curvature
    that grows during training, and it drops the terms between layers. Given
    `curvature_fn`, which returns ΔᵀFΔ under the exact Fisher (one
    Fisher-vector product), the step size uses that instead, as K-FAC's
    authors do for their step's scale (Martens & Grosse, 2015, §6-7): K-FAC
    then chooses the direction and the exact curvature its length.

    Args:
        layers: the Dense layers to precondition (built, without LoRA or quantisation).
        variables: all variables to update (the registered layers' kernels and
            biases among them).
        learning_rate: η_max.
        max_kl: δ of the trust-region scaling.
        damping: λ.
        decay: running-average decay of the factors per step.
        statistics_every: steps between folds of new factor statistics (1: every
            step); the caller gathers them when `gathers_statistics()` is true.
        inverse_update_every: steps between refreshes of the inverses.
        momentum: momentum of the update (0 disables it).
        diagonal_fisher: `{id(variable): c}` for variables outside registered
            layers whose Fisher block is c·I (others: 1).
    """

    def __init__(self, layers: Sequence, variables: Sequence, learning_rate: float = 0.25,
                 max_kl: float = 0.002, damping: float = 0.01, decay: float = 0.99,
                 statistics_every: int = 1, inverse_update_every: int = 10, momentum: float = 0.0,
                 diagonal_fisher: dict | None = None, name: str = "kfac"):
        super().__init__(name=name)
        self.layers = list(layers)
        self._blocks = {id(layer): block_for(layer) for layer in self.layers}
        self.variables_to_update = list(variables)
        self.learning_rate = learning_rate
        self.max_kl = max_kl
        self.damping = damping
        self.decay = decay
        if statistics_every < 1:
            raise ValueError(f"KFAC statistics_every must be a positive number of steps; got {statistics_every}.")
        self.statistics_every = statistics_every
        self.inverse_update_every = inverse_update_every
        self.momentum = momentum
        registered = {id(v) for layer in self.layers for v in (layer.kernel, layer.bias)}
        self.other_variables = [v for v in self.variables_to_update if id(v) not in registered]
        self.diagonal_fisher = {id(v): float((diagonal_fisher or {}).get(id(v), 1.0)) for v in self.other_variables}
        self.steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="steps")
        self.a_factors, self.g_factors, self.a_inverses, self.g_inverses = [], [], [], []
        for layer in self.layers:
            fan_in, fan_out = self._blocks[id(layer)].fan_in, self._blocks[id(layer)].fan_out
            for store, size in ((self.a_factors, fan_in + 1), (self.g_factors, fan_out),
                                (self.a_inverses, fan_in + 1), (self.g_inverses, fan_out)):
                store.append(tf.Variable(tf.eye(size), trainable=False))
        # Without momentum a step is η·Δ itself; velocities would only add state and ops.
        self.velocities = [tf.Variable(tf.zeros(v.shape), trainable=False)
                           for v in self.variables_to_update] if momentum else []
        self._records: dict[int, tuple[tf.Tensor, tf.Tensor]] = {}

    @contextlib.contextmanager
    def capture(self, tape: tf.GradientTape):
        """Records each registered layer's inputs and pre-activations during a forward pass.

        Inside the context each layer computes s = a W + b (a convolution for
        Conv2D), watched by `tape`, then its activation, so
        `tape.gradient(L, self.pre_activations())` gives the per-sample ∂L/∂s of
        any loss L.
        """
        self._records = {}
        originals = {}
        for layer in self.layers:
            originals[id(layer)] = layer.__dict__.get("call")

            def call(inputs, training=None, _layer=layer):
                if id(_layer) in self._records:
                    raise ValueError(f"Layer {_layer.name!r} was called twice in one forward pass; K-FAC "
                                     f"needs each registered layer to be used once per pass.")
                rows, pre_activation = self._blocks[id(_layer)].forward(inputs)
                tape.watch(pre_activation)
                self._records[id(_layer)] = (rows, pre_activation)
                return _layer.activation(pre_activation) if _layer.activation is not None else pre_activation

            object.__setattr__(layer, "call", call)
        try:
            yield self
        finally:
            for layer in self.layers:
                if originals[id(layer)] is None:
                    object.__delattr__(layer, "call")
                else:
                    object.__setattr__(layer, "call", originals[id(layer)])

    def pre_activations(self) -> list[tf.Tensor]:
        """The pre-activations s recorded by the last `capture`, in layer order."""
        unused = [layer.name for layer in self.layers if id(layer) not in self._records]
        if unused:
            raise ValueError(f"Registered layer(s) {', '.join(map(repr, unused))} were not called in the "
                             f"captured forward pass; register only the layers the model uses.")
        return [self._records[id(layer)][1] for layer in self.layers]

    def gathers_statistics(self) -> tf.Tensor:
        """Whether this step folds in new factor statistics: every `statistics_every`-th step, from the first."""
        return self.steps % self.statistics_every == 0

    def _inputs(self, layer) -> tf.Tensor:
        return tf.cast(self._records[id(layer)][0], tf.float32)

    def update_factors(self, output_gradients: Sequence[tf.Tensor], weights: tf.Tensor | None = None) -> None:
        """Folds A = E[ā āᵀ] and G = E[g gᵀ] of the last capture into the running averages.

        A = [[E[a aᵀ], E[a]], [E[a]ᵀ, 1]] is assembled from aᵀa and the column
        sums of a, so the bias column ā = [a, 1] is never materialised.

        For a Conv2D layer the rows are (sample, position) pairs: A averages
        ā āᵀ over all of them, G sums g gᵀ over each sample's positions and
        averages over samples.

        Args:
            output_gradients: per-sample g = ∂/∂s, one per registered layer
                (row i is sample i's), or a list of several whose G = E[g gᵀ]
                add up (the rows of Σₖ over outputs k of an exact expectation,
                such as a Gaussian's Jᵀ Σ⁻¹ J), of the SUMMED log-likelihood
                Σᵢ wᵢ log p(ỹᵢ|xᵢ) of targets sampled from the model, or, for a
                unit-variance Gaussian scalar output y, of Σᵢ wᵢ yᵢ: its rows are
                the Jacobians J = ∂y/∂s, and E over ỹ ~ N(y, 1) of the sampled
                g gᵀ is exactly J Jᵀ. Weighting the sum zeroes the rows with wᵢ = 0.
            weights: optional 0/1 weight per sample (e.g. a batch's mask); the
                expectations are then Σ wᵢ xᵢxᵢᵀ / Σ wᵢ.
        """
        folds = tf.cast(self.steps // self.statistics_every, tf.float32)  # folds before this one
        decay = tf.minimum(self.decay ** self.statistics_every, folds / (folds + 1.0))
        for layer, gradient, a_factor, g_factor in zip(self.layers, output_gradients, self.a_factors,
                                                       self.g_factors):
            block = self._blocks[id(layer)]
            inputs = self._inputs(layer)
            positions = block.positions(self._records[id(layer)][1])
            parts = [block.gradient_rows(part) for part in (gradient if isinstance(gradient, (list, tuple))
                                                             else [gradient])]
            if weights is None:
                weighted, count = inputs, tf.cast(tf.shape(inputs)[0], tf.float32)
            else:
                row_weights = tf.repeat(weights, positions) if positions > 1 else weights
                weighted, count = inputs * row_weights[:, None], tf.reduce_sum(row_weights)
            sums = tf.reduce_sum(weighted, axis=0)
            second_moment = tf.concat([
                tf.concat([tf.matmul(weighted, inputs, transpose_a=True), sums[:, None]], axis=1),
                tf.concat([sums, count[None]], axis=0)[None, :],
            ], axis=0)
            count = tf.maximum(count, 1.0)
            a_factor.assign(decay * a_factor + (1.0 - decay) * second_moment / count)
            samples = count / positions
            outer = tf.add_n([tf.matmul(rows, rows, transpose_a=True) for rows in parts])
            g_factor.assign(decay * g_factor + (1.0 - decay) * outer / samples)

    def output_weighted_gradients(self, output_gradients: Sequence[tf.Tensor],
                                  cotangents: tf.Tensor) -> dict[int, tf.Tensor]:
        """The gradient of Σᵢ cᵢ yᵢ for a model with a scalar output yᵢ per sample, from its per-sample Jacobians.

        With Jᵢ = ∂yᵢ/∂s the rows of `output_gradients` (one per registered
        layer, from the last capture), ∂/∂W̄ Σᵢ cᵢ yᵢ = Σᵢ āᵢ (cᵢ Jᵢ)ᵀ: the
        kernel gets aᵀ(c ⊙ J), the bias Σᵢ cᵢ Jᵢ. With cᵢ = ∂L/∂yᵢ this is ∂L/∂W̄,
        so one backward pass gives both a loss's gradient and the Jacobians whose
        E[J Jᵀ] is the Gauss-Newton G of a unit-variance Gaussian output.

        Returns:
            `{id(variable): gradient}` for every registered kernel and bias.
        """
        gradients = {}
        for layer, jacobian in zip(self.layers, output_gradients):
            block = self._blocks[id(layer)]
            per_sample = tf.reshape(cotangents, [-1] + [1] * (jacobian.shape.rank - 1))
            scaled = block.gradient_rows(jacobian * per_sample)
            gradients[id(layer.kernel)] = block.kernel_shaped(tf.matmul(self._inputs(layer), scaled, transpose_a=True))
            gradients[id(layer.bias)] = tf.reduce_sum(scaled, axis=0)
        return gradients

    def refresh_inverses(self) -> None:
        """Recomputes the damped inverses from the current factors."""
        for a_factor, g_factor, a_inverse, g_inverse in zip(self.a_factors, self.g_factors, self.a_inverses,
                                                            self.g_inverses):
            a_inv, g_inv = damped_inverses(a_factor, g_factor, self.damping)
            a_inverse.assign(a_inv)
            g_inverse.assign(g_inv)

    def apply_gradients(self, gradients: Sequence[tf.Tensor], kl_fn: Callable[[], tf.Tensor] | None = None,
                        curvature_fn: Callable[[list], tf.Tensor] | None = None) -> dict:
        """Preconditions `gradients` (aligned with `variables`), scales the step and applies it.

        Args:
            gradients: gradients of the loss, aligned with `variables`.
            kl_fn: optional; returns the exact mean KL between the model before
                the step and the model now. A step whose KL exceeds 1.5δ (the
                quadratic model far off) is shrunk to a KL of about δ, by
                sqrt(δ / KL).
            curvature_fn: optional; given directions aligned with `variables`,
                returns ΔᵀFΔ under the exact Fisher at the current variables;
                the step size then uses it in place of ΔᵀF̂Δ.

        Returns:
            `{"kfac_step_size": η, "kfac_quadratic_kl": ½η²ΔᵀFΔ (ΔᵀF̂Δ without
            `curvature_fn`), "kfac_factored_quadratic_kl": ½η²ΔᵀF̂Δ}`, plus with
            `kl_fn` `"kfac_step_kl"` (the exact KL before any shrinking) and
            `"kfac_shrink"` (the factor applied, 1 if none).
        """
        if self.inverse_update_every > 0:
            if self.steps % self.inverse_update_every == 0:
                self.refresh_inverses()
        by_id = {id(v): g for v, g in zip(self.variables_to_update, gradients)}
        directions = {}
        quadratic = tf.constant(0.0)
        for layer, a_factor, g_factor, a_inverse, g_inverse in zip(
                self.layers, self.a_factors, self.g_factors, self.a_inverses, self.g_inverses):
            block = self._blocks[id(layer)]
            combined = tf.concat([block.kernel_matrix(by_id[id(layer.kernel)]), by_id[id(layer.bias)][None, :]],
                                 axis=0)
            direction = a_inverse @ combined @ g_inverse
            # tr(Δᵀ A Δ G) = Σ (A Δ) ⊙ (Δ G) for symmetric A and G
            quadratic += tf.reduce_sum((a_factor @ direction) * (direction @ g_factor))
            directions[id(layer.kernel)] = block.kernel_shaped(direction[:-1])
            directions[id(layer.bias)] = direction[-1]
        for variable in self.other_variables:
            scale = self.diagonal_fisher[id(variable)]
            directions[id(variable)] = by_id[id(variable)] / scale
            quadratic += scale * tf.reduce_sum(tf.square(directions[id(variable)]))
        factored = quadratic
        if curvature_fn is not None:
            quadratic = curvature_fn([directions[id(variable)] for variable in self.variables_to_update])
        step_size = tf.minimum(self.learning_rate, tf.sqrt(2.0 * self.max_kl / tf.maximum(quadratic, 1e-12)))
        steps = [step_size * directions[id(variable)] for variable in self.variables_to_update]
        if self.velocities:
            for velocity, step in zip(self.velocities, steps):
                velocity.assign(self.momentum * velocity + step)
            steps = [tf.identity(velocity) for velocity in self.velocities]
        for variable, step in zip(self.variables_to_update, steps):
            variable.assign_sub(step)
        self.steps.assign_add(1)
        metrics = {"kfac_step_size": step_size, "kfac_quadratic_kl": 0.5 * step_size * step_size * quadratic,
                   "kfac_factored_quadratic_kl": 0.5 * step_size * step_size * factored}
        if kl_fn is not None:
            step_kl = kl_fn()
            shrink = tf.where(step_kl > 1.5 * self.max_kl, tf.sqrt(self.max_kl / tf.maximum(step_kl, 1e-12)), 1.0)
            for variable, step in zip(self.variables_to_update, steps):
                variable.assign_add((1.0 - shrink) * step)
            for velocity in self.velocities:
                velocity.assign(shrink * velocity)
            metrics.update(kfac_step_kl=step_kl, kfac_shrink=shrink)
        return metrics
