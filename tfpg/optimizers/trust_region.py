"""The natural trust-region step shared by NPG, TRPO and the trust-region value fit."""

from __future__ import annotations

from typing import Callable, Sequence

import tensorflow as tf

from tfpg.optimizers.cg import conjugate_gradient
from tfpg.optimizers.fisher import fisher_vector_product
from tfpg.optimizers.flat import assign_flat, flat_gradient, flatten


def full_step(evaluate):
    """Step acceptance that always takes the whole step (NPG): same outputs as the line search."""
    improvement, divergence = evaluate(tf.constant(1.0))
    return tf.constant(True), tf.constant(1.0), tf.constant(1), improvement, divergence


def trust_region_step(objective: Callable[[], tf.Tensor], divergence: Callable[[], tf.Tensor],
                      variables: Sequence, max_divergence: float, accept=full_step, damping: float = 0.1,
                      cg_iterations: int = 10, cg_residual_tolerance: float = 1e-10) -> dict:
    """Maximises objective(θ) subject to divergence(θ) ≤ δ by one natural-gradient step.

    With g = ∇objective at θ_old and x ≈ (H + λI)⁻¹g by conjugate gradient on
    products with H, the Hessian of `divergence` at θ_old (the Fisher for a
    KL, the Gauss-Newton matrix for a squared distance),

        Δ = sqrt(2δ / gᵀx) · x,

    so that ½Δᵀ(H + λI)Δ = δ. `accept(evaluate)` then chooses the step
    fraction (`full_step`, or `backtracking_line_search` with δ bound in);
    `evaluate(α)` sets θ = θ_old + αΔ and returns (objective gain, divergence).
    If nothing is accepted, θ_old is restored exactly.

    Args:
        objective: the objective at the current variables (to maximise).
        divergence: the divergence from θ_old at the current variables; zero
            with zero gradient at θ_old.
        variables: θ.
        max_divergence: δ.
        accept: the step-acceptance rule.
        damping: λ.
        cg_iterations: the most CG iterations.
        cg_residual_tolerance: CG stops once rᵀr is below this.

    Returns:
        dict with `objective_before`, `accepted`, `fraction`, `tried`,
        `improvement`, `divergence`, `cg_iterations`, `cg_residual`
        (improvement and divergence are 0 when nothing is accepted).
    """
    with tf.GradientTape() as tape:
        before = objective()
    gradient = flat_gradient(tape, before, variables)
    direction, iterations, residual = conjugate_gradient(
        lambda v: fisher_vector_product(divergence, variables, v, damping),
        gradient, cg_iterations, cg_residual_tolerance,
    )
    step = tf.sqrt(2.0 * max_divergence / (tf.reduce_sum(gradient * direction) + 1e-12)) * direction
    theta_old = flatten(variables)

    def evaluate(fraction):
        assign_flat(variables, theta_old + fraction * step)
        return objective() - before, divergence()

    accepted, fraction, tried, improvement, reached = accept(evaluate)
    if not accepted:
        assign_flat(variables, theta_old)
        improvement, reached = tf.constant(0.0), tf.constant(0.0)
    return {"objective_before": before, "accepted": accepted, "fraction": fraction, "tried": tried,
            "improvement": improvement, "divergence": reached, "cg_iterations": iterations,
            "cg_residual": residual}
