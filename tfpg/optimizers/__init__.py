"""Optimisation toolbox: Fisher-vector products, CG, line search, trust-region steps, K-FAC, flat vectors."""

from tfpg.optimizers.cg import conjugate_gradient
from tfpg.optimizers.fisher import fisher_vector_product
from tfpg.optimizers.flat import assign_flat, flat_gradient, flatten, unflatten
from tfpg.optimizers.kfac import KFAC, registrable_layers
from tfpg.optimizers.line_search import backtracking_line_search
from tfpg.optimizers.trust_region import full_step, trust_region_step

__all__ = ["KFAC", "assign_flat", "backtracking_line_search", "conjugate_gradient", "fisher_vector_product",
           "flat_gradient", "flatten", "full_step", "registrable_layers", "trust_region_step", "unflatten"]
