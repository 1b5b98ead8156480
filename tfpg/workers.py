"""Distributed collection settings: how many Ray workers, of how many env copies, on which cluster."""

from __future__ import annotations

import dataclasses
import numbers

from tfpg.config import positive_int


@dataclasses.dataclass(frozen=True)
class Workers:
    """Distributed collection settings: K Ray workers of M env copies each, on the cluster at `address`."""

    num_workers: int
    envs_per_worker: int
    address: str | None = None


def requested_workers(num_workers: int, envs_per_worker: int, ray_address: str | None,
                      num_envs: int | None) -> Workers | None:
    """The workers `fit`'s arguments ask for, or None for collection in this process.

    Args:
        num_workers: K Ray workers (0: none).
        envs_per_worker: M env copies per worker (1 unless K > 0).
        ray_address: the cluster's head, or None (only with K > 0).
        num_envs: copies asked for in this process (None or 1 when K > 0).

    Raises:
        ValueError: for arguments that contradict each other or are not the right kind, naming the fix.
    """
    if isinstance(num_workers, bool) or not isinstance(num_workers, numbers.Integral) or num_workers < 0:
        raise ValueError(f"num_workers must be a non-negative integer (0: collect in this process), got "
                         f"{num_workers!r}.")
    envs_per_worker = positive_int("envs_per_worker", envs_per_worker)
    if ray_address is not None and not isinstance(ray_address, str):
        raise ValueError(f"ray_address must be a string such as '10.0.0.1:6379' or None, got {ray_address!r}.")
    if num_workers == 0:
        if envs_per_worker != 1 or ray_address is not None:
            raise ValueError("envs_per_worker and ray_address apply to Ray workers; set num_workers > 0 too, or "
                             "use num_envs for copies in this process.")
        return None
    if num_envs not in (None, 1):
        raise ValueError(f"num_envs={num_envs} counts env copies in this process; with num_workers={num_workers} "
                         f"the copies run in the workers: set envs_per_worker instead (the batch has "
                         f"num_workers × envs_per_worker copies).")
    return Workers(int(num_workers), envs_per_worker, ray_address)
