"""A watchdog that stops a local Ray instance's processes when the process that started it dies.

`ray.init` starts the instance's processes (GCS, raylet, dashboard and runtime-env agents, workers) as
descendants of the calling process. An orderly exit shuts them down; a process killed by SIGKILL, or aborted
by a second Ctrl-C, cannot, and some of them ignore SIGTERM and outlive it. The watchdog runs in a session of
its own (a Ctrl-C to the terminal does not reach it), notes the starter's descendants while the starter lives,
and once it is gone kills those still running, identified by pid and start time (so a reused pid is never hit).

    python tfpg/ray_watchdog.py <pid of the starter>

It is run by its path, so that it loads nothing but the standard library (not TensorFlow).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import NamedTuple

POLL_SECONDS = 0.5


class Process(NamedTuple):
    """What /proc says of a living process."""

    name: str
    parent: int
    session: int
    start: int  # clock ticks after boot: with the pid, it names the process even if the pid is reused


def process_table() -> dict[int, Process]:
    """pid → `Process` of every process on this machine, zombies aside."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as file:
                stat = file.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z":
            found[int(entry)] = Process(stat[stat.index("(") + 1:stat.rindex(")")], int(fields[1]), int(fields[3]),
                                        int(fields[19]))
    return found


def descendants(root: int, processes: dict[int, Process]) -> dict[int, int]:
    """pid → start time of every descendant of `root` (not `root` itself)."""
    children: dict[int, list[int]] = {}
    for pid, process in processes.items():
        children.setdefault(process.parent, []).append(pid)
    found, pending = {}, list(children.get(root, []))
    while pending:
        pid = pending.pop()
        found[pid] = processes[pid].start
        pending += children.get(pid, [])
    return found


def watch(starter: int, own: int) -> list[int]:
    """Waits for `starter` to die, then kills the descendants it had (and theirs); returns the pids killed."""
    known: dict[int, int] = {}
    processes = process_table()
    while starter in processes:
        known.update(descendants(starter, processes))
        time.sleep(POLL_SECONDS)
        processes = process_table()
    killed = []
    survivors = {pid: start for pid, start in known.items()
                 if pid != own and pid in processes and processes[pid].start == start}
    for pid in list(survivors):
        survivors.update(descendants(pid, processes))
    for pid in survivors:
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except (ProcessLookupError, PermissionError):
            pass
    return killed


_started: subprocess.Popen | None = None


def start_watchdog() -> subprocess.Popen:
    """Starts a watchdog for this process (see the module docstring), once per process."""
    global _started
    if _started is None or _started.poll() is not None:
        _started = subprocess.Popen([sys.executable, os.path.abspath(__file__), str(os.getpid())],
                                    start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
    return _started


if __name__ == "__main__":
    watch(int(sys.argv[1]), os.getpid())
