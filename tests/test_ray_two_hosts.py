"""The README's multi-machine commands, run as written: `ray start --head` on one host, `ray start --address`
on a second host with another address and another home folder, and `tfpg.train --ray_address` training across
both, with every process the test started stopped by its session id at the end."""

import glob
import os
import re
import shlex
import subprocess
import sys
import time

import pytest

from helpers import ROOT, read_csv
from two_hosts import TwoHosts, living_processes

pytest.importorskip("ray")
# One xdist worker runs these one after another (make test's --dist loadgroup): two Ray clusters at once on a
# small machine starve each other of CPUs.
pytestmark = [pytest.mark.ray, pytest.mark.xdist_group("ray")]

README_ADDRESS = "10.0.0.1:6379"


def readme_cluster_commands() -> list[str]:
    """The commands of the README's shell block that starts a cluster, comments dropped, continuations joined."""
    with open(os.path.join(ROOT, "README.md")) as file:
        blocks = re.findall(r"```sh\n(.*?)```", file.read(), re.S)
    block = next(block for block in blocks if "ray start --head" in block)
    joined = block.replace("\\\n", " ")
    return [line.split("#")[0].strip() for line in joined.splitlines() if line.split("#")[0].strip()]


def _ray(args: list[str]) -> list[str]:
    return [os.path.join(os.path.dirname(sys.executable), "ray"), *args]


def _wait_for_nodes(hosts, env, address, count, timeout=120.0):
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        result = subprocess.run(hosts.hosts[0].command(_ray(["status", f"--address={address}"])),
                                env=hosts.hosts[0].environment(env), capture_output=True, text=True, timeout=60)
        status = result.stdout + result.stderr
        active = status.split("Active:")[-1].split("Pending:")[0] if "Active:" in status else ""
        if active.count("node_") >= count:
            return
        time.sleep(2)
    raise AssertionError(f"the cluster did not reach {count} nodes in {timeout} s:\n{status[-3000:]}")


def test_the_readme_commands_train_across_two_hosts(tmp_path):
    commands = readme_cluster_commands()
    kinds = ["ray get-auth-token", "export", "ray start --head", "ray start --address", "python -m tfpg.train"]
    assert [next(kind for kind in kinds if command.startswith(kind)) for command in commands] == kinds, commands
    env: dict[str, str] = {"RAY_worker_niceness": "0"}  # as tfpg's local instances (tests beside it are busy)
    with TwoHosts() as hosts:
        head, node = hosts.hosts
        port = 6379
        address = f"{head.address}:{port}"
        # 1. The token, on the first host.
        words = shlex.split(commands[0])
        result = subprocess.run(head.command(_ray(words[1:])), env=head.environment(env), capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        token = result.stdout.strip().splitlines()[-1]
        # 2. The same variables on every host.
        for assignment in shlex.split(commands[1].replace("<the token>", token))[1:]:
            key, value = assignment.split("=", 1)
            env[key] = value
        assert env["RAY_AUTH_TOKEN"] == token
        # 3. The head, and 4. a node on the second host; each blocks so that its session holds its processes.
        test_settings = ["--block", "--num-cpus=1", "--include-dashboard=false"]
        head_args = shlex.split(commands[2])[1:] + test_settings + [f"--node-ip-address={head.address}",
                                                                    f"--temp-dir={head.temp}"]
        hosts.start(head, _ray(head_args), env, str(tmp_path / "head.log"))
        _wait_for_nodes(hosts, env, address, 1)
        node_args = shlex.split(commands[3].replace(README_ADDRESS, address))[1:]
        node_args += ["--block", "--num-cpus=1", f"--node-ip-address={node.address}", f"--temp-dir={node.temp}"]
        hosts.start(node, _ray(node_args), env, str(tmp_path / "node.log"))
        _wait_for_nodes(hosts, env, address, 2)
        # 5. The launcher on the first host, with two one-CPU workers: one per host.
        train = shlex.split(commands[4].replace(README_ADDRESS, address))
        train = [{"--steps=3000000": "--steps=1024", "--num_workers=4": "--num_workers=2",
                  "--envs_per_worker=8": "--envs_per_worker=2"}.get(word, word) for word in train]
        train = [word for word in train if not word.startswith("--logdir")]
        train += [f"--logdir={tmp_path / 'run'}", "--rollout_steps=256", "--eval_episodes=1"]
        assert train[:3] == ["python", "-m", "tfpg.train"]
        result = subprocess.run(head.command([sys.executable, *train[1:]]), env=head.environment(env), cwd=ROOT,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-3000:])
        assert int(read_csv(tmp_path / "run" / "progress.csv")[-1]["total_steps"]) == 1024
        # A rollout worker ran on the second host: its log is in that node's own temp folder.
        worker_logs = glob.glob(os.path.join(node.temp, "session_*", "logs", "worker-*.out"))
        assert any("RolloutWorker" in open(path).read() for path in worker_logs), worker_logs
        sessions = hosts.sessions()
        assert living_processes(sessions)
    assert living_processes(sessions) == []
