"""Distributed runs from the launcher and the API without a cluster of the tests: checks, unreachable
clusters, and Ctrl-C with a Ray instance the run starts itself."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import gymnasium as gym
import pytest

import tfpg

from two_hosts import living_processes

ray = pytest.importorskip("ray")

# One xdist worker runs these one after another (make test's --dist loadgroup): two Ray clusters at once on a
# small machine starve each other of CPUs.
pytestmark = [pytest.mark.ray, pytest.mark.xdist_group("ray")]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_distributed_settings_are_checked_before_anything_starts():
    agent = tfpg.PPO()
    for kwargs, message in [
        (dict(num_workers=-1), "num_workers must be a non-negative integer"),
        (dict(num_workers=1.5), "num_workers must be"),
        (dict(num_workers=0, envs_per_worker=4), "set num_workers > 0"),
        (dict(num_workers=2, num_envs=4), "set envs_per_worker instead"),
        (dict(num_workers=1, ray_address=6379), "ray_address must be a string"),
        (dict(num_workers=1, ray_address="nonsense"), "not an address of the form host:port"),
    ]:
        with pytest.raises(ValueError, match=message):
            agent.fit("Pendulum-v1", steps=64, verbose=0, **kwargs)
    with pytest.raises(ValueError, match="from a Gymnasium id"):
        agent.fit(gym.make("Pendulum-v1"), steps=64, num_workers=1, verbose=0)
    assert not agent.built and not ray.is_initialized()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_cluster_is_reported_before_anything_is_written(tmp_path):
    address = f"127.0.0.1:{_free_port()}"
    start = time.monotonic()
    with pytest.raises(ConnectionError, match=f"Cannot reach the Ray cluster at '{address}'.*ray start --head"):
        tfpg.PPO().fit("Pendulum-v1", steps=64, num_workers=1, ray_address=address, verbose=0)
    assert time.monotonic() - start < 30
    logdir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "tfpg.train", "--algo=ppo", "--env=Pendulum-v1", "--num_workers=1",
         f"--ray_address={address}", f"--logdir={logdir}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "Cannot reach the Ray cluster" in result.stderr
    assert not logdir.exists()


def _processes_mentioning(text: str) -> list[str]:
    """Living processes whose command line or environment holds `text` (Ray's agents rename themselves, e.g.
    `ray::DashboardAgent`, but keep the environment they inherited)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as file:
                command = file.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/environ", "rb") as file:
                environment = file.read().decode(errors="replace")
            with open(f"/proc/{pid}/stat") as file:
                zombie = file.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            continue
        if not zombie and (text in command or text in environment):
            found.append(f"{pid}: {command[:200]}")
    return found


def _train_with_a_local_worker(logdir, environment: dict, **popen) -> subprocess.Popen:
    """A long launcher run with one Ray worker on a Ray instance of its own, once it has finished an iteration."""
    environment = {**os.environ, **environment}
    for name in ("RAY_ADDRESS", "RAY_AUTH_MODE"):
        environment.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "tfpg.train", "--algo=ppo", "--env=Pendulum-v1", "--num_workers=1",
         "--envs_per_worker=2", "--rollout_steps=256", "--steps=10000000", f"--logdir={logdir}", "--verbose=0"],
        cwd=ROOT, env=environment, **popen)
    deadline = time.monotonic() + 240
    while not (logdir / "progress.csv").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    return process


def test_ctrl_c_stops_the_workers_and_ray_and_leaves_no_process_behind(tmp_path):
    # The launcher starts its own local Ray instance; all its processes carry the temp dir in their
    # command lines, so any survivor is found by it.
    ray_temp = tempfile.mkdtemp(prefix="tfpg-ray-", dir="/tmp")  # short: Ray's socket paths live under it
    logdir = tmp_path / "run"
    process = _train_with_a_local_worker(logdir, {"RAY_TMPDIR": ray_temp}, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, text=True)
    assert process.poll() is None, process.communicate()[0][-3000:]
    assert _processes_mentioning(ray_temp), "the run's Ray processes were not found"
    workers = [int(line.split(":")[0]) for line in _processes_mentioning(ray_temp) if "RolloutWorker" in line]
    assert workers and all(os.getpriority(os.PRIO_PROCESS, pid) == 0 for pid in workers)  # not Ray's nice 15
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130, output[-3000:]
    assert "Interrupted at" in output
    assert "Token authentication" not in output  # Ray's warning on every local start, spared
    time.sleep(2)
    assert _processes_mentioning(ray_temp) == []
    assert tfpg.load(str(logdir / "checkpoints")).total_steps > 0
    shutil.rmtree(ray_temp, ignore_errors=True)


def test_more_workers_than_this_machines_cpus_is_a_usage_error_before_anything_is_written(tmp_path):
    logdir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "tfpg.train", "--algo=ppo", "--env=Pendulum-v1", "--num_workers=1000",
         f"--logdir={logdir}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "--num_workers=1000 workers reserve one CPU each" in result.stderr
    assert "Traceback" not in result.stderr and not logdir.exists()


def test_a_launcher_killed_by_sigkill_leaves_no_ray_process_behind(tmp_path):
    # SIGKILL (like a second Ctrl-C) gives the launcher no chance to stop the Ray instance it started, and Ray's
    # dashboard and runtime-env agents outlive it; its watchdog stops them. The launcher leads a session of its
    # own, so every process it started is found by that session even after renaming itself (ray::...).
    process = _train_with_a_local_worker(tmp_path / "run", {}, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True)
    started = [name for _, name in living_processes({process.pid})]
    assert process.poll() is None and any(name.startswith("ray::") for name in started), started
    process.kill()
    process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while living_processes({process.pid}) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert living_processes({process.pid}) == []


def test_auto_without_a_cluster_started_on_this_machine_is_reported_before_anything_is_written(tmp_path):
    logdir = tmp_path / "run"
    environment = {**os.environ, "RAY_TMPDIR": str(tmp_path / "no-cluster-here")}  # where `ray start` notes it
    environment.pop("RAY_ADDRESS", None)
    result = subprocess.run(
        [sys.executable, "-m", "tfpg.train", "--algo=ppo", "--env=Pendulum-v1", "--num_workers=1",
         "--ray_address=auto", f"--logdir={logdir}"], cwd=ROOT, env=environment, capture_output=True, text=True,
        timeout=300)
    assert result.returncode == 2 and "ray_address='auto' joins a Ray cluster started on this machine" in result.stderr
    assert "Traceback" not in result.stderr and not logdir.exists()
