"""Trust region policy optimisation: the natural step of NPG, accepted by a backtracking line search."""

from __future__ import annotations

import dataclasses

from tfpg.algorithms.npg import NPG, NPGConfig
from tfpg.config import hparam
from tfpg.optimizers import backtracking_line_search


@dataclasses.dataclass
class TRPOConfig(NPGConfig):
    """TRPO hyperparameters: NPG's plus the line search."""

    backtrack_ratio: float = hparam(0.8, "Shrink factor α of the line search (θ_old + αʲΔ).",
                                    low=0.0, high=1.0, low_open=True)
    max_backtracks: int = hparam(10, "Candidate step sizes tried before keeping θ_old.", low=1)


class TRPO(NPG):
    """Trust region policy optimisation (Schulman et al., 2015).

    NPG's step Δ = sqrt(2δ / gᵀx) · x, then θ = θ_old + αʲΔ for the first
    j = 0, 1, ... whose surrogate improves and whose mean KL(π_old‖π) ≤ δ;
    if none does, θ_old is kept (bit for bit) and `line_search_success` is 0.
    """

    name = "trpo"
    config_class = TRPOConfig

    def _accept_step(self, evaluate):
        return backtracking_line_search(evaluate, self._max_kl, self.config.backtrack_ratio,
                                        self.config.max_backtracks)
