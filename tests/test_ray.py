"""Distributed collection on a real two-node Ray cluster that the tests start on this machine."""

import os

import numpy as np
import pytest

import tfpg
from tests import fault_envs
from tfpg.ray_cluster import LOCAL_SYSTEM_CONFIG

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

# One xdist worker runs these one after another (make test's --dist loadgroup): two Ray clusters at once on a
# small machine starve each other of CPUs.
pytestmark = [pytest.mark.ray, pytest.mark.xdist_group("ray")]


@pytest.fixture(scope="module")
def cluster():
    """Two Ray nodes of one CPU each, and this process connected to them."""
    # at normal priority, as tfpg's own local instances run them (tfpg.ray_cluster.LOCAL_SYSTEM_CONFIG)
    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False,
                                                          "_system_config": LOCAL_SYSTEM_CONFIG})
    nodes.add_node(num_cpus=1)
    ray.init(address=nodes.address, include_dashboard=False, logging_level="warning")
    yield nodes
    ray.shutdown()
    nodes.shutdown()


def _wait_for_free_cpus(count, seconds=120.0):
    import time

    deadline = time.monotonic() + seconds
    while ray.available_resources().get("CPU", 0) < count and time.monotonic() < deadline:
        time.sleep(0.5)


def _weights(agent):
    return [v.numpy() for v in agent.policy.weights + agent.value_model.weights]


def test_two_workers_of_two_copies_train_exactly_as_one_vector_env_of_four(cluster):
    # Pendulum episodes end (truncated at 200 steps) inside the batches, so final observations,
    # bootstrapping and the order of finished episodes are all exercised.
    settings = dict(seed=3, rollout_steps=150, minibatch_size=100, epochs=2)
    local = tfpg.PPO(**settings)
    local_history = local.fit("Pendulum-v1", steps=3 * 600, num_envs=4, verbose=0)
    distributed = tfpg.PPO(**settings)
    history = distributed.fit("Pendulum-v1", steps=3 * 600, num_workers=2, envs_per_worker=2,
                              ray_address=cluster.address, verbose=0)
    workers = distributed._sources.current.where
    assert len({w["pid"] for w in workers}) == 2 and os.getpid() not in {w["pid"] for w in workers}
    assert distributed.total_steps == local.total_steps == 1800
    for ours, theirs in zip(_weights(distributed), _weights(local)):
        np.testing.assert_array_equal(ours, theirs)
    for key in ("episode_return", "policy_loss", "value_loss", "approx_kl"):
        np.testing.assert_array_equal(history.history[key], local_history.history[key])
    # 4 copies × 450 steps: each copy finishes two 200-step episodes
    assert distributed.episode_window.episodes() == local.episode_window.episodes()
    assert len(local.episode_window.episodes()) == 4 * 2
    distributed.close()


def test_a_recurrent_policy_collects_with_two_workers_exactly_as_with_one_vector_env(cluster):
    # each copy's action noise comes from its own stream and its state is carried by whoever steps it
    settings = dict(seed=5, recurrent="lstm", recurrent_units=8, rollout_steps=150, sequence_length=50,
                    minibatch_size=100, epochs=2)
    local = tfpg.PPO(**settings)
    local_history = local.fit("Pendulum-v1", steps=2 * 600, num_envs=4, verbose=0)
    _wait_for_free_cpus(2)  # the workers an earlier test killed give their CPUs back once their processes end
    distributed = tfpg.PPO(**settings)
    history = distributed.fit("Pendulum-v1", steps=2 * 600, num_workers=2, envs_per_worker=2,
                              ray_address=cluster.address, verbose=0)
    for key in ("policy_loss", "value_loss", "approx_kl"):
        np.testing.assert_allclose(history.history[key], local_history.history[key], rtol=1e-4, atol=1e-7)
    for ours, theirs in zip(_weights(distributed), _weights(local)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
    assert distributed.episode_window.episodes() == local.episode_window.episodes()
    distributed.close()


def test_a_worker_killed_mid_batch_is_replaced_and_its_share_collected_again(cluster, capsys):
    # The worker's env copy 1 (reset with seed 1) kills the worker's process with SIGKILL at its 10th
    # step; the replacement's copies have other seeds and live on.
    agent = tfpg.A2C(seed=0, rollout_steps=32)
    history = agent.fit(f"tests.fault_envs:{fault_envs.KILLED}", steps=2 * 64, num_workers=1, envs_per_worker=2,
                        ray_address=cluster.address, verbose=0)
    assert agent.total_steps == 128 and agent.iterations == 2
    assert agent._sources.current._restarts == 1
    assert history.history["workers_replaced"] == [1, 0]  # counted in the logs (progress.csv) of its batch
    assert "Ray worker 0 (env copies 0..1)" in capsys.readouterr().err
    assert ray.get(agent._sources.current.workers[0].where.remote())["pid"] == agent._sources.current.where[0]["pid"]
    agent.close()


def test_a_worker_that_keeps_dying_ends_fit_with_an_env_error_after_a_final_checkpoint(cluster, tmp_path):
    agent = tfpg.A2C(seed=0, rollout_steps=32)
    agent.fit("CartPole-v1", steps=64, num_envs=2, verbose=0)  # trained before the failing run
    checkpoint = tfpg.callbacks.Checkpoint(str(tmp_path / "checkpoints"), every=None, seconds=1e9)
    with pytest.raises(tfpg.EnvError, match=r"Ray worker 0 .*died.*after 2 restarts"):
        agent.fit(f"tests.fault_envs:{fault_envs.ALWAYS_KILLED}", steps=64, num_workers=1, envs_per_worker=2,
                  ray_address=cluster.address, callbacks=[checkpoint], verbose=0)
    restored = tfpg.load(str(tmp_path / "checkpoints"))
    assert restored.total_steps == agent.total_steps == 64
    assert agent._sources.current is None  # the workers were stopped


def test_an_env_error_in_a_worker_names_the_worker_and_the_copy(cluster):
    agent = tfpg.A2C(seed=0, rollout_steps=32)
    with pytest.raises(tfpg.EnvError, match=r"Ray worker 0 on .*pid \d+.*env copy 1.*physics exploded"):
        agent.fit(f"tests.fault_envs:{fault_envs.RAISING}", steps=64, num_workers=1, envs_per_worker=2,
                  ray_address=cluster.address, verbose=0)


def test_a_run_resumes_with_another_worker_count(cluster, tmp_path):
    agent = tfpg.PPO(seed=1, rollout_steps=64, minibatch_size=64, epochs=1)
    agent.fit("Pendulum-v1", steps=128, num_envs=2, verbose=0)
    agent.save(str(tmp_path))
    resumed = tfpg.load(str(tmp_path))
    resumed.fit("Pendulum-v1", steps=192, num_workers=1, envs_per_worker=3, ray_address=cluster.address, verbose=0)
    assert resumed.total_steps == 128 + 192 and resumed.iterations == 2  # batches of 2 × 64, then 3 × 64
    worker = resumed._sources.current.where[0]["pid"]
    resumed.fit("Pendulum-v1", steps=192, num_workers=1, envs_per_worker=3, ray_address=cluster.address, verbose=0)
    assert resumed._sources.current.where[0]["pid"] == worker  # the same workers go on collecting
    resumed.save(str(tmp_path))
    again = tfpg.load(str(tmp_path))
    again.fit("Pendulum-v1", steps=128, num_envs=2, verbose=0)  # and locally again
    assert again.total_steps == 640 and again.iterations == 4
    resumed.close()


def test_a_worker_that_cannot_make_the_env_names_the_cause(cluster, tmp_path, monkeypatch):
    # The env's module is importable in this process only: the workers' processes do not have tmp_path.
    (tmp_path / "driver_only_env.py").write_text(
        "import gymnasium\ngymnasium.register('DriverOnly-v0', 'gymnasium.envs.classic_control:CartPoleEnv', "
        "max_episode_steps=50)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    agent = tfpg.A2C(seed=0, rollout_steps=8)
    with pytest.raises(tfpg.EnvError, match=r"could not start \(.*No module named 'driver_only_env'.*importable"):
        agent.fit("driver_only_env:DriverOnly-v0", steps=64, num_workers=1, envs_per_worker=1,
                  ray_address=cluster.address, verbose=0)
    agent.close()


def test_a_network_factory_that_cannot_be_pickled_is_named_before_the_workers_act(cluster):
    import threading

    import keras

    lock = threading.Lock()
    agent = tfpg.A2C(seed=0, rollout_steps=8,
                     encoder=lambda space: (lock, keras.Sequential([keras.layers.Dense(8)]))[1])
    with pytest.raises(ValueError, match="network factories cannot be sent to Ray workers.*lock.*module level"):
        agent.fit("CartPole-v1", steps=64, num_workers=1, envs_per_worker=1, ray_address=cluster.address, verbose=0)
    agent.close()
