"""Where an agent's batches come from: a local vector env or Ray workers, kept while asked for again."""

from __future__ import annotations

from typing import Callable

from tfpg.envs import EnvLike, check_backend, check_env_id, make_vector_env
from tfpg.rollout import Collector
from tfpg.workers import Workers

ANY = object()  # `RolloutSources.open`: whatever workers the current source has


class RolloutSources:
    """Holds the one rollout source an agent collects from, and makes a new one when the request changes.

    A source is a local `tfpg.rollout.Collector` over a vector env, or a
    `tfpg.ray_rollouts.RayRollouts` over Ray workers; both have `num_envs`,
    `collect_batch(...)` and `close()`. `open` returns the current source while
    it was made for the same `env` object and the same copies, workers,
    asynchrony and backend (None and `ANY` accept what the current one has).
    Replacing a source closes the old one if it was made here (an env object
    passed in by the user is never closed).

    Args:
        build: `build(observation_space, action_space) -> action description`, called with a new source's
            spaces before it is used; it raises `ValueError` for spaces the caller cannot take.
        start_acting: `start_acting(ray_rollouts)` hands Ray workers what they act with.
    """

    def __init__(self, build: Callable[[object, object], dict], start_acting: Callable[[object], None]):
        self._build = build
        self._start_acting = start_acting
        self.current = None
        self._env = None
        self._asynchronous = False
        self._workers: Workers | None = None
        self._backend = "gymnasium"
        self._owned = False

    def open(self, env: EnvLike, num_envs: int | None, asynchronous: bool | None, workers, backend: str | None,
             seed: int, skip_non_finite: bool) -> tuple[object, bool]:
        """The source for this request, and whether it is new (its envs are freshly reset).

        Args:
            env: a Gymnasium id, `Env` or `VectorEnv` (only an id with workers).
            num_envs: local env copies, or None for the current source's (or 1).
            asynchronous: step local copies in subprocesses; None: as the current source.
            workers: `Workers`, None for local collection, or `ANY`.
            backend: "gymnasium" or "envpool"; None: as the current source.
            seed: the seed a new source resets its copies with (copy j gets `seed + j`).
            skip_non_finite: a new source drops env steps with non-finite data instead of raising.

        Raises:
            ValueError: for an env, spaces or settings that cannot be collected from; the current source
                is kept when a new local env is refused.
        """
        if self.current is not None and self._env is env and self._same_copies(num_envs, workers) \
                and asynchronous in (None, self._asynchronous) and backend in (None, self._backend):
            return self.current, False
        asynchronous, backend = bool(asynchronous), backend or "gymnasium"
        workers = None if workers is ANY else workers
        if workers is not None:
            self.close()  # before joining Ray: a source that started Ray stops it when closed
            source, owned = self._ray_rollouts(env, workers, asynchronous, seed, skip_non_finite, backend), True
        else:
            vector_env = make_vector_env(env, num_envs=num_envs, asynchronous=asynchronous, backend=backend)
            owned = vector_env is not env
            try:
                action = self._build(vector_env.single_observation_space, vector_env.single_action_space)
            except ValueError:
                if owned:
                    vector_env.close()
                raise
            self.close()
            source = Collector(vector_env, action, seed, skip_non_finite=skip_non_finite)
        self.current, self._env, self._owned = source, env, owned
        self._asynchronous, self._workers, self._backend = asynchronous, workers, backend
        return source, True

    def _same_copies(self, num_envs: int | None, workers) -> bool:
        """Whether the current source has the copies asked for (with workers, they are the workers' own)."""
        if workers is not ANY and workers != self._workers:
            return False
        return self._workers is not None or num_envs in (None, self.current.num_envs)

    def _ray_rollouts(self, env: EnvLike, workers: Workers, asynchronous: bool, seed: int, skip: bool,
                      backend: str):
        if not isinstance(env, str):
            raise ValueError(f"Distributed collection (num_workers > 0) makes the env in each worker from a "
                             f"Gymnasium id; got {type(env).__name__}. Pass the env's id (register a custom env "
                             f"under an id, e.g. 'my_package.envs:MyEnv-v0').")
        check_env_id(env)
        check_backend(env, backend, asynchronous)
        from tfpg.ray_rollouts import RayRollouts  # Ray is an optional dependency
        source = RayRollouts(env, workers.num_workers, workers.envs_per_worker, asynchronous, seed, skip,
                             address=workers.address, backend=backend)
        try:
            self._build(*source.spaces())
            self._start_acting(source)
        except BaseException:
            source.close()
            raise
        return source

    def close(self) -> None:
        """Closes the current source if it was made here, and forgets it."""
        if self.current is not None and self._owned:
            self.current.close()
        self.current = None
        self._env = None
