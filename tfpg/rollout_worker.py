"""A rollout worker: env copies and an acting copy of the policy in a process of their own.

`tfpg.ray_rollouts` runs one per Ray actor; the class itself knows nothing of Ray.
The worker builds its policy from the learner's network description (the
`NetworkSpec`, the space descriptions and the config), so only weights travel
from the learner each batch, never a model.
"""

from __future__ import annotations

import os
import socket

import numpy as np

from tfpg.acting import ActingPolicy
from tfpg.action_masks import mask_entry
from tfpg.config import AgentConfig
from tfpg.envs import describe_env, make_vector_env
from tfpg.model_building import ModelBuilder
from tfpg.native_output import start_devices_quietly
from tfpg.network_factories import NetworkSpec
from tfpg.normalization import observation_normalizer
from tfpg.rollout import Collector
from tfpg.space_descriptions import same_action_spaces, same_observation_spaces
from tfpg.transitions import Transitions


class RolloutWorker:
    """Steps `num_envs` copies of an env with the learner's policy.

    Args:
        env_id: a Gymnasium id.
        num_envs: the worker's copies, M.
        asynchronous: step them in subprocesses of the worker.
        first_copy: the global index of the first copy (worker k of M copies each: k × M).
        seed: seeds the first reset; copy i of the worker is reset with `seed + i`.
        skip_non_finite: skip non-finite env steps instead of raising (`non_finite_env_data="skip"`).
        backend: the vector env backend (see `tfpg.envs.make_vector_env`).
    """

    def __init__(self, env_id: str, num_envs: int, asynchronous: bool, first_copy: int, seed: int,
                 skip_non_finite: bool, backend: str = "gymnasium"):
        self.env = make_vector_env(env_id, num_envs, asynchronous, first_copy=first_copy, backend=backend)
        self.first_copy = first_copy
        self.seed = seed
        self.skip_non_finite = skip_non_finite
        self.collector: Collector | None = None
        self.acting: ActingPolicy | None = None

    def spaces(self) -> tuple[dict, dict]:
        """The descriptions of the env's observation and action spaces."""
        return describe_env(self.env)

    def where(self) -> dict:
        """The worker's host and process id."""
        return {"host": socket.gethostname(), "pid": os.getpid()}

    def start_acting(self, networks: NetworkSpec, observation: dict, action: dict, config: AgentConfig) -> None:
        """Builds the acting policy and resets the env copies.

        Raises:
            ValueError: if this worker's env has other spaces than the learner's agent.
        """
        own_observation, own_action = self.spaces()
        if not same_observation_spaces(own_observation, observation) or not same_action_spaces(own_action, action):
            raise ValueError(
                f"The env of the worker of copies {self.first_copy}.. has observation space {own_observation} and "
                f"action space {own_action}, but the agent was built for {observation} and {action}; every "
                f"worker must make the same env (check the env's version and package on each machine)."
            )
        start_devices_quietly()
        action_mask = mask_entry(observation, action, config.action_mask_key)
        normalizer = observation_normalizer(observation, action_mask) if config.normalize_observations else None
        builder = ModelBuilder(networks, observation, action, config, normalizer, action_mask)
        self.acting = ActingPolicy(builder.policy(), observation, action, builder.state_sizes.get("policy"),
                                   action_mask)
        self.collector = Collector(self.env, action, self.seed, skip_non_finite=self.skip_non_finite,
                                   first_copy=self.first_copy)

    def collect(self, weights: list[np.ndarray], seed: np.ndarray, steps_per_env: int,
                first_step: int) -> Transitions:
        """One share of a batch: `steps_per_env` steps of every copy under the given policy weights."""
        self.acting.set_weights(weights)
        return self.collector.collect_batch(steps_per_env, self.acting, seed, first_step)

    def close(self) -> None:
        """Closes the env copies."""
        if self.collector is not None:
            self.collector.close()
        else:
            self.env.close()
