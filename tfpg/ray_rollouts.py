"""Distributed collection: K Ray actors of M env copies each, gathered as one vector env of K×M copies.

Each batch, the learner puts the policy's weights (observation statistics
included) into Ray's object store once; every worker steps its copies with them
and returns its transitions; the learner joins them in copy order
(`tfpg.transitions.merge_transitions`) and does everything else (statistics,
log-probabilities, values, advantages, the update) as for a local vector env. So
training stays exactly on-policy, and with tfpg's MLP policies the batch equals
that of a local vector env of K×M copies bit for bit (see `tfpg.acting`).
"""

from __future__ import annotations

import re
import sys
import time

import numpy as np

from tfpg.acting import ActingPolicy
from tfpg.config import AgentConfig
from tfpg.errors import EnvError, NonFiniteError
from tfpg.network_factories import NetworkSpec
from tfpg.ray_cluster import connect, import_ray
from tfpg.rollout_worker import RolloutWorker
from tfpg.transitions import Transitions, merge_transitions


class RayRollouts:
    """Collects batches with Ray actors, each owning a vector env and an acting copy of the policy.

    A worker that dies (its process or node lost) is replaced by a new one, which
    collects its share of the batch again with the same weights: its copies start
    new episodes (those in progress are dropped unrecorded). After `max_restarts`
    replacements within one batch the batch fails with an `EnvError` naming the
    worker.

    Args:
        env_id: a Gymnasium id that every worker's machine can make.
        num_workers: K.
        envs_per_worker: M.
        asynchronous: each worker steps its copies in subprocesses.
        seed: env seed; the run's copy j (worker j // M) is reset with `seed + j`.
        skip_non_finite: skip non-finite env steps instead of raising.
        address: the Ray cluster (see `tfpg.ray_cluster.connect`).
        cpus_per_worker: CPUs each worker reserves in the cluster.
        max_restarts: workers started in place of dead ones within one batch, per worker.
        start_timeout: seconds a worker may take to start.
        backend: each worker's vector env backend (see `tfpg.envs.make_vector_env`).

    Attributes:
        timing: seconds of the last batch's parts: `broadcast_seconds` (weights into the object store),
            `worker_seconds` (the slowest worker's stepping), `gather_seconds` (the rest of the wait: weights
            fetched by the workers, transitions sent back), `merge_seconds` (joining them).

    Raises:
        ConnectionError: the cluster cannot be reached.
        ValueError: Ray is missing, or the cluster has fewer CPUs than the workers reserve.
        EnvError: a worker could not make its env.
    """

    def __init__(self, env_id: str, num_workers: int, envs_per_worker: int, asynchronous: bool, seed: int,
                 skip_non_finite: bool, address: str | None = None, cpus_per_worker: float = 1.0,
                 max_restarts: int = 2, start_timeout: float = 120.0, backend: str = "gymnasium"):
        self._ray = import_ray()
        self.env_id = env_id
        self.num_workers, self.envs_per_worker = num_workers, envs_per_worker
        self.num_envs = num_workers * envs_per_worker
        self.asynchronous = asynchronous
        self.backend = backend
        self.seed = seed
        self.skip_non_finite = skip_non_finite
        self.max_restarts = max_restarts
        self.start_timeout = start_timeout
        self.failed = False
        self._acting_description = None
        self._restarts = 0
        self.timing: dict = {}
        self._owns_connection = connect(address)
        self.workers: list = []
        try:
            cpus = self._ray.cluster_resources().get("CPU", 0.0)
            if cpus < num_workers * cpus_per_worker:
                raise ValueError(
                    f"num_workers={num_workers} workers reserve {cpus_per_worker:g} CPU each, but the Ray cluster has "
                    f"{cpus:g} CPUs in all; use fewer workers, or add machines to the cluster "
                    f"(`ray start --address=...` on each)."
                )
            self._actor_class = self._ray.remote(RolloutWorker).options(num_cpus=cpus_per_worker, max_restarts=0)
            self.workers = [self._start(index, seed + index * envs_per_worker) for index in range(num_workers)]
            self.where = self._ray.get([worker.where.remote() for worker in self.workers])
        except BaseException:
            self.close()
            raise

    def _start(self, index: int, seed: int):
        worker = self._actor_class.remote(self.env_id, self.envs_per_worker, self.asynchronous,
                                          index * self.envs_per_worker, seed, self.skip_non_finite, self.backend)
        ready, _ = self._ray.wait([worker.where.remote()], timeout=self.start_timeout)
        if not ready:
            self._ray.kill(worker)
            raise EnvError(
                f"Ray worker {index} did not start within {self.start_timeout:g} s: the cluster has "
                f"{self._ray.available_resources().get('CPU', 0.0):g} CPUs free. Free or add CPUs, or use fewer "
                f"workers."
            )
        try:
            self._ray.get(ready[0])
        except self._ray.exceptions.RayError as error:
            raise self._error(index, error, "while starting") from None
        return worker

    def spaces(self) -> tuple[dict, dict]:
        """The observation and action space descriptions of the first worker's env."""
        return self._ray.get(self.workers[0].spaces.remote())

    def start_acting(self, networks: NetworkSpec, observation: dict, action: dict, config: AgentConfig) -> None:
        """Has every worker build its acting policy from the learner's description and reset its env.

        Raises:
            ValueError: a network factory cannot be sent to the workers, a worker's env has other spaces than
                the agent's, or its policy cannot be built.
        """
        try:
            self._ray.cloudpickle.dumps(networks)
        except Exception as error:  # what a factory captured decides what fails, and how
            raise ValueError(f"The network factories cannot be sent to Ray workers: {type(error).__name__}: "
                             f"{str(error).splitlines()[0] if str(error) else ''}. A factory must be picklable; "
                             f"define it at module level and pass it (or its 'module:function' name), without "
                             f"capturing locks, open files or models.") from None
        self._acting_description = (networks, observation, action, config)
        self._call_all("start_acting", *self._acting_description)

    def _call_all(self, method: str, *arguments) -> list:
        references = [getattr(worker, method).remote(*arguments) for worker in self.workers]
        results = []
        for index, reference in enumerate(references):
            try:
                results.append(self._ray.get(reference))
            except self._ray.exceptions.RayTaskError as error:
                cause = error.cause
                if isinstance(cause, ValueError):
                    raise ValueError(f"Ray worker {index}: {cause}") from None
                raise self._error(index, error, f"in {method}") from None
        return results

    def collect_batch(self, steps_per_env: int, acting: ActingPolicy, seed: np.ndarray,
                      first_step: int = 0) -> Transitions:
        """Every worker's share of one batch, joined in copy order.

        Raises:
            EnvError: an env raised, or a worker died more than `max_restarts` times.
            NonFiniteError: an env returned non-finite data.
        """
        ray = self._ray
        start = time.perf_counter()
        weights = ray.put(acting.weights())
        broadcast = time.perf_counter()
        pending = {}
        for index, worker in enumerate(self.workers):
            pending[worker.collect.remote(weights, seed, steps_per_env, first_step)] = index
        parts: dict[int, Transitions] = {}
        restarts = [0] * self.num_workers
        while pending:
            [reference], _ = ray.wait(list(pending), num_returns=1)
            index = pending.pop(reference)
            try:
                parts[index] = ray.get(reference)
            except ray.exceptions.RayActorError as error:  # the worker's process or node is gone
                restarts[index] += 1
                if restarts[index] > self.max_restarts:
                    self.failed = True
                    raise self._error(index, error, f"after {self.max_restarts} restarts in one batch") from None
                lost = self.where[index]
                self._replace(index)
                first = index * self.envs_per_worker
                print(f"Ray worker {index} (env copies {first}..{first + self.envs_per_worker - 1}) on {lost['host']} "
                      f"(pid {lost['pid']}) died; replaced by a new worker on {self.where[index]['host']} (pid "
                      f"{self.where[index]['pid']}), which collects its share of this batch again.", file=sys.stderr)
                pending[self.workers[index].collect.remote(weights, seed, steps_per_env, first_step)] = index
            except ray.exceptions.RayTaskError as error:
                self.failed = True
                raise self._error(index, error, "while collecting") from None
        gathered = time.perf_counter()
        for index, count in enumerate(restarts):
            if count:  # a replaced worker's copies started new episodes
                parts[index].restarted = np.ones(self.envs_per_worker, bool)
        merged = merge_transitions([parts[index] for index in range(self.num_workers)])
        self.timing = {
            "broadcast_seconds": broadcast - start,
            "worker_seconds": merged.seconds,
            "gather_seconds": gathered - broadcast - merged.seconds,
            "merge_seconds": time.perf_counter() - gathered,
            "workers_replaced": sum(restarts),
        }
        return merged

    def _replace(self, index: int) -> None:
        """Starts a new worker in place of dead worker `index`, with env seeds of its own."""
        self._restarts += 1
        seed = int(np.random.SeedSequence([self.seed, index, self._restarts]).generate_state(1)[0] % 2**31)
        worker = self._start(index, seed)
        self.workers[index] = worker
        networks, observation, action, config = self._acting_description
        try:
            self._ray.get(worker.start_acting.remote(networks, observation, action, config))
            self.where[index] = self._ray.get(worker.where.remote())
        except self._ray.exceptions.RayError as error:
            self.failed = True
            raise self._error(index, error, "while restarting") from None

    def _error(self, index: int, error: Exception, when: str) -> Exception:
        """The error to raise for a failure of worker `index`: the env's own error class where it had one."""
        where = self.where[index] if len(getattr(self, "where", [])) > index else None
        place = f" on {where['host']} (pid {where['pid']})" if where else ""
        cause = getattr(error, "cause", None)
        if isinstance(cause, NonFiniteError):
            return NonFiniteError(f"Ray worker {index}{place}: {cause}")
        if isinstance(cause, EnvError):
            return EnvError(f"Ray worker {index}{place}: {cause}")
        if cause is not None:
            what = f"raised {type(cause).__name__}: {cause}"
        elif getattr(error, "actor_init_failed", False):  # Ray keeps the creation error only as text
            what = f"could not start ({_last_exception_line(str(error))}); every machine needs the env and its " \
                   f"module importable by the same name"
        else:
            what = f"died ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else 'no detail'})"
        return EnvError(
            f"Ray worker {index}{place} {what} {when}. The batch in progress was dropped; the agent is as after "
            f"its last update."
        )

    def close(self) -> None:
        """Stops the workers (and the Ray instance this source started); leaves no worker process behind."""
        ray = self._ray
        workers, self.workers = self.workers, []
        if workers and not self.failed:
            closing = [worker.close.remote() for worker in workers]
            ray.wait(closing, num_returns=len(closing), timeout=10.0)
        for worker in workers:
            ray.kill(worker)
        # ray.kill returns before the process ends; a call on a killed actor fails once Ray has marked it dead
        # (and given its CPUs back), so the next source on the cluster finds them free.
        if workers:
            ray.wait([worker.where.remote() for worker in workers], num_returns=len(workers), timeout=10.0)
        if self._owns_connection and ray.is_initialized():
            ray.shutdown()
            self._owns_connection = False


def _last_exception_line(text: str) -> str:
    """The last 'SomeError: message' line of a traceback's text (the exception raised), or its first line."""
    lines = [line.strip() for line in text.splitlines()]
    raised = [line for line in lines if re.match(r"^[\w.]*(Error|Exception|Exit|Interrupt)\b.*", line)]
    return raised[-1] if raised else (lines[0] if lines else "no detail")
