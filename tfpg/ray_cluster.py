"""Connecting to a Ray cluster, with errors that say what to do, before a run writes anything."""

from __future__ import annotations

import os
import socket

from tfpg.native_output import drop_log_messages
from tfpg.ray_watchdog import start_watchdog

PROBE_SECONDS = 10.0
_INSTALL = "Install it with: pip install 'tfpg[ray]'."

# Ray starts its workers at niceness 15. tfpg's rollout workers are the critical path of synchronous collection
# (the learner waits for every batch), so at that priority anything else busy on the machine, the learner
# included, stalls them: a worker importing TensorFlow next to two busy processes took minutes to start.
LOCAL_SYSTEM_CONFIG = {"worker_niceness": 0}


def import_ray():
    """The `ray` module, or a `ValueError` naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise ValueError(f"Distributed collection (num_workers > 0) needs Ray, which is not installed. {_INSTALL}") \
            from None
    return ray


def _host_and_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a "host:port" or "ray://host:port" address; None for "auto" and "local"."""
    bare = address.split("://", 1)[-1]
    host, _, port = bare.rpartition(":")
    if address in ("auto", "local"):
        return None
    if not host or not port.isdigit():
        raise ValueError(f"ray_address={address!r} is not an address of the form host:port (e.g. 10.0.0.1:6379, the "
                         f"address `ray start --head` prints), 'auto' (a cluster started on this machine) or None "
                         f"(a new local Ray instance).")
    return host, int(port)


def check_reachable(address: str | None) -> None:
    """Raises `ConnectionError` if nothing listens at a cluster address.

    `ray.init` retries an unreachable address without end; a plain TCP
    connection attempt with a timeout answers first.
    """
    address = address or os.environ.get("RAY_ADDRESS")
    if address == "auto":
        address = _started_on_this_machine()
    target = _host_and_port(address) if address else None
    if target is None:
        return
    try:
        socket.create_connection(target, timeout=PROBE_SECONDS).close()
    except OSError as error:
        raise ConnectionError(
            f"Cannot reach the Ray cluster at {address!r} ({error}). Start it there with `ray start --head "
            f"--port={target[1]}`, check the address it prints and that this machine can reach it, or leave "
            f"ray_address unset to start a local Ray instance."
        ) from None


def _started_on_this_machine() -> str:
    """The address of the cluster `ray start` last started on this machine, which is what "auto" joins.

    Raises:
        ConnectionError: no cluster was started here.
    """
    from ray._private.utils import read_ray_address  # the file `ray start --head` writes its address to

    address = read_ray_address()
    if not address:
        raise ConnectionError("ray_address='auto' joins a Ray cluster started on this machine with `ray start "
                              "--head`, and none was. Start one, pass the address of another (host:port), or leave "
                              "ray_address unset to start a local Ray instance.")
    return address


def _spare_token_notice() -> None:
    """Drops the warning Ray logs on every start of a local instance that it turned token authentication on
    (it does so by default; the cluster is as secure with the warning as without)."""
    drop_log_messages("ray._private.authentication.authentication_token_setup",
                      "Token authentication is enabled for this Ray cluster")


def connect(address: str | None) -> bool:
    """Joins the Ray cluster at `address` unless this process already is in one.

    Args:
        address: "host:port" of a running cluster's head, "auto" (a cluster
            started on this machine), or None (RAY_ADDRESS if set, else a new
            local Ray instance using this machine's cores).

    Returns:
        Whether this call started the connection (the caller then shuts it down).

    Raises:
        ConnectionError: the cluster cannot be reached.
        ValueError: Ray is not installed, or the address is malformed.
    """
    ray = import_ray()
    target = _host_and_port(address) if address else None
    if ray.is_initialized():
        current = ray.get_runtime_context().gcs_address
        # (ports only: a head's host may be known by several names and addresses)
        if target is not None and _host_and_port(current)[1] != target[1]:
            raise ValueError(f"This process is already connected to the Ray cluster at {current!r}, not "
                             f"ray_address={address!r}; pass that address or None, or call ray.shutdown() first.")
        return False
    check_reachable(address)
    # "local" starts a new instance: with no address, Ray would join any cluster started on this machine
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    _spare_token_notice()
    options = {}
    if address == "local":  # an instance of this process's own: its processes must not outlive it
        start_watchdog()
        options["_system_config"] = LOCAL_SYSTEM_CONFIG
    try:
        ray.init(address=address, include_dashboard=False, logging_level="warning", log_to_driver=True, **options)
    except ConnectionError as error:
        raise ConnectionError(f"Cannot join the Ray cluster at {address!r}: {error}") from None
    return True
