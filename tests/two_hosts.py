"""Two hosts on one machine: a network namespace each, joined by a veth pair, each with its own home folder.

Where namespaces cannot be made (not root, no `ip`), both hosts are this machine's loopback address with
their own home and temp folders: two Ray nodes on one host, which Ray supports.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass

from tfpg.ray_watchdog import process_table


@dataclass
class Host:
    """One host: its network namespace (None: this machine's), address, home and temp folders."""

    namespace: str | None
    address: str
    home: str
    temp: str

    def command(self, args: list[str]) -> list[str]:
        """`args` run on this host."""
        return ["ip", "netns", "exec", self.namespace, *args] if self.namespace else list(args)

    def environment(self, extra: dict[str, str]) -> dict[str, str]:
        """The environment of a process on this host: its own home, plus `extra`."""
        return {**os.environ, "HOME": self.home, **extra}


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def _make_namespaces(tag: str, subnet: str) -> list[str] | None:
    """Two namespaces joined by a veth pair with addresses `subnet`.1 and .2, or None if they cannot be made."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return None
    names = [f"tfpg{tag}a", f"tfpg{tag}b"]
    links = [f"tv{tag}a", f"tv{tag}b"]
    try:
        for name in names:
            _ip("netns", "add", name)
        _ip("link", "add", links[0], "type", "veth", "peer", "name", links[1])
        for index, (name, link) in enumerate(zip(names, links)):
            _ip("link", "set", link, "netns", name)
            _ip("-n", name, "addr", "add", f"{subnet}.{index + 1}/24", "dev", link)
            _ip("-n", name, "link", "set", link, "up")
            _ip("-n", name, "link", "set", "lo", "up")
            _ip("netns", "exec", name, "true")  # (entering needs more rights than making)
    except (subprocess.CalledProcessError, OSError, subprocess.TimeoutExpired):
        _remove_namespaces(names)
        return None
    return names


def _remove_namespaces(names: list[str]) -> None:
    for name in names:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=30)


class TwoHosts:
    """A context manager giving two `Host`s and, on exit, stopping every process started through `start`.

    Processes started with `start` lead sessions of their own; on exit each session gets SIGTERM, then
    SIGKILL for what is left, and the namespaces and folders are removed.
    """

    def __init__(self):
        tag = str(os.getpid() % 100000)
        self.root = tempfile.mkdtemp(prefix="tfpg-hosts-", dir="/tmp")  # short: Ray's socket paths are limited
        subnet = f"10.231.{os.getpid() % 250}"
        self.namespaces = _make_namespaces(tag, subnet)
        self.hosts = []
        for index, name in enumerate("ab"):
            home, temp = os.path.join(self.root, f"home-{name}"), os.path.join(self.root, f"ray-{name}")
            os.makedirs(home)
            namespace = self.namespaces[index] if self.namespaces else None
            address = f"{subnet}.{index + 1}" if self.namespaces else "127.0.0.1"
            self.hosts.append(Host(namespace, address, home, temp))
        self.started: list[subprocess.Popen] = []

    def __enter__(self) -> "TwoHosts":
        return self

    def start(self, host: Host, args: list[str], env: dict[str, str], log: str) -> subprocess.Popen:
        """Starts `args` on `host` in a session of its own, its output in the file `log`."""
        with open(log, "w") as output:
            process = subprocess.Popen(host.command(args), env=host.environment(env), stdout=output,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self.started.append(process)
        return process

    def sessions(self) -> set[int]:
        """The session ids of the processes started."""
        return {process.pid for process in self.started}

    def __exit__(self, *exc) -> None:
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            for session in self.sessions():
                try:
                    os.killpg(session, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            while living_processes(self.sessions()) and time.monotonic() < deadline:
                time.sleep(0.2)
        for process in self.started:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self.namespaces:
            _remove_namespaces(self.namespaces)
        shutil.rmtree(self.root, ignore_errors=True)


def living_processes(sessions: set[int]) -> list[tuple[int, str]]:
    """(pid, name) of the processes, zombies aside, whose session id is in `sessions`."""
    return [(pid, process.name) for pid, process in process_table().items() if process.session in sessions]
