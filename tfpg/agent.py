"""`OnPolicyAgent`: the loop every algorithm shares; algorithms supply only their update.

An algorithm subclass sets `name` and `config_class` and implements:

- `_build_training()` → creates optimizers (and any other training state) and
  returns it by name as trackables for the checkpoint;
- `_update(batch)` → dict of scalar metric tensors, one update on a flat batch
  (compiled once with a fixed input signature);
- optionally `_estimate_advantages(...)` (GAE by default).
"""

from __future__ import annotations

import json
import numbers
import time
import uuid
from typing import Any, Iterable

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf

from tfpg import checkpoint as checkpoint_module
from tfpg.acting import ActingPolicy
from tfpg.action_masks import check_some_allowed, mask_entry
from tfpg.callback_list import CallbackList
from tfpg.callbacks import ProgressBar
from tfpg.collection import BatchCollector
from tfpg.compiled import compiled
from tfpg.config import AgentConfig, positive_int
from tfpg.episode_window import EpisodeWindow
from tfpg.envs import EnvLike
from tfpg.errors import EnvError
from tfpg.episodes import episode_actor, play_episodes
from tfpg.inference import checked_observations, checked_state, episode_summary, evaluation_env
from tfpg.memory_check import activation_bytes, check_batch_memory, step_bytes
from tfpg.model_building import ModelBuilder, shares_torso, snapshot
from tfpg.native_output import start_devices_quietly
from tfpg.network_factories import NetworkSpec
from tfpg.networks import action_dtype
from tfpg.normalization import observation_normalizer
from tfpg.observations import ObservationSpec, batch_size
from tfpg.reward_scaling import RewardScaler
from tfpg.returns import generalized_advantages
from tfpg.recurrent import RECOMPUTE_REFUSAL, sequence_input
from tfpg.rollout_sources import ANY, RolloutSources
from tfpg.sequence_models import SequenceModels
from tfpg.sequences import input_signature, training_sequence_length
from tfpg.space_descriptions import ActionAdapter, check_same_spaces, describe_action_space, \
    describe_observation_space
from tfpg.transitions import Rollout
from tfpg.update import BATCH_FIELDS, TIME_MAJOR_FIELDS, batch_tensors, check_rollout_shapes, distinct, \
    explained_variance, is_annealed, learning_rate_at, non_finite_update_error, transactional, written_variables
from tfpg.workers import Workers, requested_workers


class OnPolicyAgent:
    """Base class of the on-policy agents.

    Args:
        seed: seeds TensorFlow (initialisation and action sampling), the envs
            and their action spaces.
        encoder: optional `fn(observation_space)` returning a new Keras layer
            that maps the preprocessed observations to features; tfpg adds its
            hidden layers (`hidden_sizes`, may be empty) and heads. Called once
            for the policy, once for the value model unless `shared_network`,
            and once for π_old where the algorithm keeps one.
        policy: optional `fn(observation_space, action_space)` returning a new
            `keras.Model` whose `call` maps the preprocessed observations to a
            `tfd.Distribution` over the flat actions (see the README).
        value: optional `fn(observation_space, action_space)` returning a new
            `keras.Model` mapping the preprocessed observations to values `[batch]`.
        **hyperparameters: fields of the algorithm's config class.

        `encoder`, `policy` and `value` may also be the name of a factory given
        to `tfpg.register_network`, or a `"module:factory"` string.

    Attributes:
        config: the validated hyperparameters.
        policy: `keras.Model` mapping observations to a `tfd.Distribution`
            (after `build`).
        value_model: `keras.Model` mapping observations to values `[batch]`.
        action_mask: the Dict observation entry that masks the actions (`tfpg.action_masks`), or None
            (after `build`).
        total_steps: environment steps collected so far.
        iterations: updates done so far.
        stop_training: set to True by a callback to end `fit`.
    """

    name = "agent"
    config_class = AgentConfig
    launcher_num_envs = 1  # env copies `tfpg.train` makes when --num_envs is not given

    def __init__(self, seed: int = 0, encoder=None, policy=None, value=None, **hyperparameters):
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**31:
            raise ValueError(f"seed must be an integer in [0, 2**31), got {seed!r}.")
        self.seed = int(seed)
        self.config = self.config_class.from_kwargs(**hyperparameters)
        self.networks = NetworkSpec.from_arguments(encoder, policy, value)
        self.built = False
        self.env_id: str | None = None  # the Gymnasium id of the env last trained on, where known
        self.stop_training = False
        self.history = None
        self._step_target: int | None = None  # total env steps the fit in progress trains to
        self._sources = RolloutSources(self._build_for_spaces, self._start_acting)
        self._managers: dict[str, tf.train.CheckpointManager] = {}

    # ----------------------------------------------------------------- building
    def build(self, observation_space, action_space) -> None:
        """Creates the models, optimizers and compiled functions for the given spaces.

        Args:
            observation_space: a Gymnasium space (or a tfpg space description).
            action_space: a Gymnasium space (or a tfpg space description).

        Raises:
            ValueError: for unsupported spaces, before anything is created.
        """
        observation = observation_space if isinstance(observation_space, dict) else \
            describe_observation_space(observation_space)
        action = action_space if isinstance(action_space, dict) else describe_action_space(action_space)
        if self.built:
            check_same_spaces((self.observation_description, self.action_description), (observation, action))
            return
        # the Dict observation entry that masks the actions, if any (checked before anything is created)
        action_mask = mask_entry(observation, action, self.config.action_mask_key)
        self.observation_description, self.action_description = observation, action
        self.action_mask = action_mask
        start_devices_quietly()  # a process's first TensorFlow op would print the GPU probe's error line
        keras.utils.set_random_seed(self.seed)
        config = self.config
        self.observation_normalizer = observation_normalizer(observation, action_mask) \
            if config.normalize_observations else None
        self.reward_scaler = RewardScaler(config.gamma)
        self._model_builder = ModelBuilder(self.networks, observation, action, config, self.observation_normalizer,
                                           action_mask)
        self.policy = self._model_builder.policy()
        self.value_model = self._model_builder.value(self.policy)
        self._shares_torso = shares_torso(self.policy, self.value_model)
        # a recurrent agent's state widths by model role ({} for feed-forward networks): see tfpg.recurrent
        self.state_sizes = dict(self._model_builder.state_sizes)
        if self.state_sizes:
            self._check_recurrent_support()
        self._sequences = SequenceModels(self.policy, self.value_model, self._shares_torso, self.state_sizes) \
            if self.state_sizes else None
        self.observation_spec = ObservationSpec(observation)
        # the shape of one observation (a nest of shapes for Dict and Tuple spaces)
        self.observation_shape = self.observation_spec.map(lambda leaf: leaf.shape)
        self._action_dtype = action_dtype(action)
        self._action_size = 1 if action["type"] == "Discrete" else int(np.prod(action["shape"]))
        self._action_adapter = ActionAdapter(action)
        self._acting = ActingPolicy(self.policy, observation, action, self.state_sizes.get("policy"), action_mask)
        self.rng = tf.random.Generator.from_seed(self.seed)
        self._identity = uuid.uuid4().hex  # marks the rollouts this agent collects
        # predict's sampled actions draw from a stream of their own, so that calling predict between fit calls
        # leaves training as it would be without (it is not checkpointed: it holds no training state).
        self._predict_rng = tf.random.Generator.from_seed(self.seed).split(1)[0]
        self.total_steps_variable = tf.Variable(0, dtype=tf.int64, trainable=False, name="total_steps")
        self.iterations_variable = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")
        self._metadata = tf.Variable(self._metadata_json(), dtype=tf.string, trainable=False)
        optimizer_state = self._build_training()
        self._checkpoint_extras = optimizer_state
        self.episode_window = EpisodeWindow()
        self._checkpoint_children = dict(
            policy=self.policy,
            value_model=self.value_model,
            reward_scaler=self.reward_scaler,
            rng=self.rng,
            total_steps=self.total_steps_variable,
            iterations=self.iterations_variable,
            metadata=self._metadata,
            recent_episodes=self.episode_window,
            **optimizer_state,
        )
        self._checkpoint = tf.train.Checkpoint(**self._checkpoint_children)
        observation_spec = self.observation_spec.tensor_specs()
        model_input_spec = input_signature(self.observation_spec, self.state_sizes)
        action_spec = tf.TensorSpec((None, self._action_size), self._action_dtype)
        # acting reads only the policy's state
        policy_input_spec = input_signature(self.observation_spec, {"policy": self.state_sizes["policy"]}) \
            if self.state_sizes else model_input_spec
        self._sample_fn = compiled(self._sample, input_signature=[policy_input_spec])
        self._mode_fn = compiled(self._mode, input_signature=[policy_input_spec])
        self._value_fn = compiled(self.value_model.__call__, input_signature=[model_input_spec])
        self._evaluate_fn = compiled(self._sequences.log_probs_and_values if self._sequences is not None
                                     else self._log_probs_and_values, input_signature=[model_input_spec, action_spec])
        self._normalize_fn = compiled(self._update_observation_statistics,
                                         input_signature=[observation_spec])
        batch_spec = {
            "observations": model_input_spec,
            "actions": action_spec,
            **{k: tf.TensorSpec((None,), tf.float32) for k in BATCH_FIELDS[2:]},
        }
        if self._recomputes_advantages():
            batch_spec["time_major"] = {"final_observations": observation_spec,
                                        **{k: tf.TensorSpec((None, None), tf.float32) for k in TIME_MAJOR_FIELDS}}
        self._train_step = compiled(self._transactional_update, input_signature=[batch_spec])
        self._batches = BatchCollector(self.observation_spec, self._action_dtype, self._acting, self._normalize_fn,
                                       self._evaluate_fn, self._value_fn,
                                       self.reward_scaler if config.scale_rewards else None,
                                       self._estimate_advantages, self.state_sizes)
        self.built = True

    def _build_for_spaces(self, observation_space, action_space) -> dict:
        """`build` for a new rollout source's spaces; returns the action description its collector needs."""
        self.build(observation_space, action_space)
        return self.action_description

    def _start_acting(self, ray_rollouts) -> None:
        """Gives Ray workers the network description and spaces they build their acting policy from."""
        ray_rollouts.start_acting(self.networks, self.observation_description, self.action_description, self.config)

    def _metadata_json(self) -> str:
        return json.dumps({
            "format": "tfpg-checkpoint-1",
            "algorithm": self.name,
            "seed": self.seed,
            "config": self.config.to_dict(),
            "observation_space": self.observation_description,
            "action_space": self.action_description,
            **({"networks": self.networks.record()} if not self.networks.is_default else {}),
            **({"env": self.env_id} if self.env_id is not None else {}),
        })

    def _record_env(self, env) -> None:
        """Remembers the Gymnasium id of `env` (an id, or an env made from one) for checkpoints and exports."""
        env_id = env if isinstance(env, str) else getattr(getattr(env, "spec", None), "id", None)
        if env_id is not None and env_id != self.env_id:
            self.env_id = env_id
            self._metadata.assign(self._metadata_json())

    def _check_recurrent_support(self) -> None:
        """Raises a `ValueError` if this agent's settings cannot train a recurrent policy (a user's: tfpg's own
        recurrent layer is checked with the config)."""
        if self._recomputes_advantages():
            raise ValueError(RECOMPUTE_REFUSAL)

    def _build_training(self) -> dict:
        """Creates the algorithm's optimizers and state; returns them by name for the checkpoint."""
        raise NotImplementedError

    def _update(self, batch: dict) -> dict:
        """One update on a flat batch; returns scalar metric tensors."""
        raise NotImplementedError

    def _build_policy_snapshot(self) -> None:
        """Creates `self.old_policy`: same architecture, shared normaliser, for π_old during updates."""
        self.old_policy = self._model_builder.old_policy(self.policy)

    def _snapshot_policy(self) -> None:
        """Copies the policy's trainable variables into `self.old_policy`."""
        snapshot(self.policy, self.old_policy)

    def _trainable_variables(self) -> list:
        """Policy and value variables, each once (shared layers appear in both models)."""
        return distinct(self.policy.trainable_variables + self.value_model.trainable_variables)

    # -------------------------------------------------------------- collecting
    def _rollout_source(self, env: EnvLike, num_envs: int | None = None, asynchronous: bool | None = None,
                        workers: Workers | None | object = ANY, backend: str | None = None):
        """The rollout source of `env` (see `RolloutSources.open`); a new one starts new episodes."""
        source, new = self._sources.open(env, num_envs, asynchronous, workers, backend,
                                         seed=self.seed + 1000 * self.iterations,
                                         skip_non_finite=self.config.non_finite_env_data == "skip")
        if new:
            self._record_env(env)
            self.reward_scaler.start_episodes(source.num_envs)
        return source

    def check_batch_memory(self, copies: int) -> None:
        """Raises a `ValueError` if a batch of `rollout_steps` × `copies` env steps, and the networks'
        activations on it, cannot fit in memory (estimated by `tfpg.memory_check.check_batch_memory`, before
        anything is collected). Needs a built agent."""
        per_step = step_bytes(self.observation_spec.stored_bytes(), self._action_size,
                              3 if self._recomputes_advantages() else 2)
        check_batch_memory(self.config.rollout_steps, copies, per_step,
                           activation_bytes(self._evaluate_fn.get_concrete_function()), self._gradient_rows(),
                           sum(int(np.prod(variable.shape)) * np.dtype(variable.dtype).itemsize
                               for variable in self._trainable_variables()))

    def _gradient_rows(self) -> int | None:
        """The batch rows of one gradient computation of the update (None: the whole batch)."""
        return None

    def collect(self, env: EnvLike, steps: int) -> Rollout:
        """Collects one batch of experience with the current policy, advantages included.

        The observation statistics are updated with the batch's observations,
        then log-probabilities and values are computed under the updated
        statistics, so they are exactly those of the policy the next update
        starts from.

        Args:
            env: a Gymnasium id, `Env` or `VectorEnv` (the same object reuses its env).
            steps: environment steps in total; each of the N env copies takes
                `steps // N` (at least one each).

        Returns:
            A time-major `Rollout`.
        """
        steps = positive_int("steps", steps)
        source = self._rollout_source(env)
        if steps < source.num_envs:
            raise ValueError(
                f"steps={steps} is smaller than the number of env copies ({source.num_envs}); "
                f"every copy takes at least one step, so pass steps >= {source.num_envs}."
            )
        seed = self.rng.uniform_full_int([2], tf.int64).numpy().view(np.uint64)  # from the checkpointed generator
        rollout = self._batches.collect(source, steps // source.num_envs, seed, self.total_steps)
        rollout.collected_by = self._identity
        self.total_steps_variable.assign_add(rollout.num_steps)
        return rollout

    def _estimate_advantages(self, rewards, values, next_values, terminated, truncated):
        """GAE(γ, λ) advantages, value targets and a mask (all ones); all `[T, N]`."""
        advantages, returns = generalized_advantages(
            rewards, values, next_values, terminated, truncated,
            self.config.gamma, self.config.gae_lambda,
        )
        return advantages, returns, np.ones_like(values)

    def _as_model_input(self, observations) -> tf.Tensor:
        return self.observation_spec.model_input(observations)

    def _values_numpy(self, observations) -> np.ndarray:
        return self._batches.values_numpy(observations)

    # ---------------------------------------------------------------- updating
    def train_on_batch(self, rollout: Rollout) -> dict:
        """Runs one update of the algorithm on a rollout.

        Args:
            rollout: a batch from `collect`.

        Returns:
            A dict of float metrics (losses, entropy, approx KL, explained
            variance, ...).

        Raises:
            ValueError: the agent is not built, `rollout` is not a `Rollout`, another agent collected it, or its
                observations or actions do not have this agent's shapes.
            NonFiniteError: the update produced NaN or Inf; it was undone.
        """
        if not self.built:
            raise ValueError("The agent is not built: call collect(env, steps) or build(...) first.")
        if not isinstance(rollout, Rollout):
            raise ValueError(f"train_on_batch expects a Rollout from agent.collect, got {type(rollout).__name__}.")
        if rollout.collected_by is not None and rollout.collected_by != self._identity:
            raise ValueError("This rollout was collected by another agent: its log-probabilities and values are that "
                             "agent's, so an update would take them for this agent's π_old. Collect the batch with "
                             "this agent (agent.collect(env, steps)).")
        check_rollout_shapes(rollout, self.observation_spec, self._action_size)
        batch, tensors = batch_tensors(rollout, self.observation_spec, self._action_dtype,
                                       self.config.normalize_advantages, self._recomputes_advantages(),
                                       training_sequence_length(rollout, self.state_sizes, self.config))
        steps_before = self.total_steps - rollout.num_steps
        if is_annealed(self.config):  # a constant rate is never written, so a restored optimizer keeps its own
            self._apply_learning_rate(steps_before)
        self._prepare_update(steps_before)
        metrics = {k: float(v) for k, v in self._compiled_update()(tensors).items()}
        if not metrics.pop("all_finite"):
            raise non_finite_update_error(metrics, self.iterations, self.total_steps)
        self.iterations_variable.assign_add(1)
        if getattr(self, "optimizer", None) is not None:
            metrics["learning_rate"] = float(self.optimizer.learning_rate.numpy())
        used = batch["mask"] > 0
        metrics["explained_variance"] = explained_variance(batch["values"][used], batch["returns"][used])
        return metrics

    def _training_state(self) -> list:
        """Every variable an update may write: networks, optimizer slots and counters, algorithm state."""
        return written_variables([self.policy, self.value_model, *self._checkpoint_extras.values()])

    def _transactional_update(self, batch: dict, **options) -> dict:
        """`_update(batch, **options)`, undone if any metric or written variable comes out NaN or infinite."""
        return transactional(self._update, self._training_state(), batch, **options)

    def _recomputes_advantages(self) -> bool:
        """Whether the update re-estimates advantages, so its batch also holds the `time_major` fields."""
        return False

    def _compiled_update(self):
        """The compiled update to run on this batch (algorithms whose updates come in several kinds override it)."""
        return self._train_step

    def _prepare_update(self, steps_before: int) -> None:
        """Sets what the update of a batch collected after `steps_before` env steps reads besides the batch
        (algorithms with annealed settings other than the learning rate override it)."""

    def _apply_learning_rate(self, steps_before: int | None = None) -> None:
        """Sets the `optimizer` attribute's rate (if there is one) to the config's, annealed for a batch
        collected after `steps_before` env steps (default: all so far).

        Called after a restore too: the optimizer's rate variable is checkpointed, and a run may continue
        with another rate."""
        optimizer = getattr(self, "optimizer", None)
        if optimizer is not None:
            steps = self.total_steps if steps_before is None else steps_before
            optimizer.learning_rate.assign(learning_rate_at(self.config, steps, self._step_target))

    # ------------------------------------------------------------- compiled parts
    def _sample(self, inputs):
        seed = tf.cast(self._predict_rng.make_seeds(1)[:, 0], tf.int32)
        if self._sequences is not None:
            distribution, state = self._sequences.step(inputs)
            return distribution.sample(seed=seed), state
        return self.policy(inputs).sample(seed=seed)

    def _mode(self, inputs):
        if self._sequences is not None:
            distribution, state = self._sequences.step(inputs)
            return distribution.mode(), state
        return self.policy(inputs).mode()

    def _log_probs_and_values(self, observations, actions):
        distribution, values = self._policy_and_values(observations)
        return distribution.log_prob(actions), values

    def _policy_and_values(self, observations):
        """The policy's distribution and the values; a torso the two networks share is computed once."""
        if self._shares_torso:
            features = self.policy.torso(observations)
            return self.policy.head(features), self.value_model.values_of(features)
        return self.policy(observations), self.value_model(observations)

    def _update_observation_statistics(self, observations):
        if self.observation_normalizer is not None:
            self.observation_normalizer.update(observations)
        return tf.constant(0)

    # ---------------------------------------------------------------- acting
    def predict(self, observations: Any, deterministic: bool = True, state: Any = None,
                episode_start: Any = None):
        """Env-ready actions for one observation or a batch.

        Args:
            observations: one observation (the space's shape) or a batch of them.
            deterministic: take the distribution's mode instead of sampling.
            state: recurrent policies only: the state `predict` returned for the same rows at the previous
                step, `[batch, S]` (a batch of 1 for one observation); None starts every row's episode.
            episode_start: recurrent policies only: whether each observation is the first of its episode
                (one bool, or one per row), so that its state is zeroed first; default: True for every row
                without a state, False with one.

        Returns:
            NumPy actions (one, or a batch), clipped to Box bounds; for a recurrent policy
            `(actions, state)`, the state to pass with the next observations.
        """
        if not self.built:
            raise ValueError("The agent is not built: call fit, collect or build first, or tfpg.load.")
        batch, single = checked_observations(self.observation_spec, observations)
        if self.action_mask is not None:
            check_some_allowed(batch[self.action_mask], self.action_description,
                               lambda row: f"row {row} of the observations", ValueError)
        act = self._mode_fn if deterministic else self._sample_fn
        inputs = self.observation_spec.model_input(batch)
        if not self.state_sizes:
            if state is not None or episode_start is not None:
                raise ValueError("state and episode_start are for recurrent policies; this agent's policy is "
                                 "feed-forward (recurrent='none'): call predict(observations).")
            actions = self._action_adapter(act(inputs).numpy())
            return actions[0] if single else actions
        state, starts = checked_state(state, episode_start, batch_size(batch), self.state_sizes["policy"])
        flat, new_state = act(sequence_input(inputs, tf.constant(starts), {"policy": tf.constant(state)}))
        actions = self._action_adapter(flat.numpy())
        return (actions[0] if single else actions), new_state.numpy()

    def evaluate(self, env: EnvLike, episodes: int = 10, deterministic: bool = True,
                 video_dir: str | None = None, max_seconds: float | None = None) -> dict:
        """Runs whole episodes without updating anything.

        Args:
            env: a Gymnasium id or `Env` (evaluated one episode at a time).
            episodes: number of episodes.
            deterministic: act with the distribution's mode.
            video_dir: if given, every episode is recorded there as an MP4 (`tfpg.video`;
                needs `tfpg[video]`; an `Env` must have `render_mode="rgb_array"`).
            max_seconds: if given, the time the evaluation may take; past it, `tfpg.errors.EvaluationTimeout`
                (which holds the finished episodes) is raised.

        Returns:
            `{"mean_return", "std_return", "mean_length", "episodes", "returns", "lengths"}`, and
            `"videos"` (the paths written) with `video_dir`.
        """
        episodes = positive_int("episodes", episodes)
        with evaluation_env(env, video_dir, f"{self.name}-evaluation") as (single, videos):
            self.build(single.observation_space, single.action_space)
            returns, lengths = play_episodes(single, episode_actor(self.predict, deterministic, bool(self.state_sizes)),
                                             episodes,
                                             self.seed + 10_000, max_seconds)
        return episode_summary(returns, lengths, videos if video_dir is not None else None)

    # --------------------------------------------------------------- properties
    @property
    def total_steps(self) -> int:
        """Environment steps collected so far."""
        return int(self.total_steps_variable.numpy()) if self.built else 0

    @property
    def iterations(self) -> int:
        """Updates done so far."""
        return int(self.iterations_variable.numpy()) if self.built else 0

    def fit(self, env: EnvLike, steps: int, num_envs: int | None = None, asynchronous: bool = False,
            callbacks: Iterable[keras.callbacks.Callback] | None = None, verbose: int = 1,
            num_workers: int = 0, envs_per_worker: int = 1, ray_address: str | None = None,
            vector_env: str = "gymnasium"):
        """Trains for `steps` environment steps: collect → train_on_batch → callbacks.

        Args:
            env: a Gymnasium id, `Env` or `VectorEnv` (only an id with `num_workers`).
            steps: environment steps to train for in this call (rounded up to
                whole iterations of `rollout_steps × num_envs`); with
                `learning_rate_schedule="linear"` the rate reaches 0 at their end.
            num_envs: env copies made from an id in this process (default 1;
                `tfpg.train`'s default is the algorithm's `launcher_num_envs`); a
                `VectorEnv` brings its own (a different number here is refused).
            asynchronous: run the copies in subprocesses.
            callbacks: `keras.callbacks.Callback`s; `epoch` is the iteration index.
            verbose: 0 silent, 1 progress bar.
            num_workers: K > 0 collects with K Ray actors of `envs_per_worker`
                copies each instead of in this process (install `tfpg[ray]`);
                the update runs here. 0: local collection.
            envs_per_worker: M, the env copies of each worker.
            ray_address: the Ray cluster to join ("host:port" of its head, or
                "auto"); None starts a local Ray instance on this machine's cores
                (or joins the one RAY_ADDRESS names).
            vector_env: what steps the copies made from an id: "gymnasium" (its
                sync or async vector env) or "envpool" (EnvPool's C++ threads;
                MuJoCo and Atari ids; install `tfpg[envpool]`).

        Returns:
            A `keras.callbacks.History` whose `history` dict has one entry per iteration.

        Raises:
            EnvError: an env copy raised or its worker process died (a Ray
                worker that dies is replaced, and its share collected again, up
                to twice per batch). The batch in progress is dropped and
                `on_train_end` runs first, so a `Checkpoint` callback writes a
                final checkpoint of the agent as after its last update.
            ConnectionError: the Ray cluster cannot be reached (before anything is done).
            NonFiniteError: non-finite env data or update (nothing non-finite is kept).
        """
        steps = positive_int("steps", steps)
        if num_envs is None and not isinstance(env, gym.vector.VectorEnv):
            num_envs = 1
        num_envs = None if num_envs is None else positive_int("num_envs", num_envs)
        if verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}.")
        workers = requested_workers(num_workers, envs_per_worker, ray_address, num_envs)
        collector = self._rollout_source(env, num_envs, asynchronous, workers, vector_env)
        history = keras.callbacks.History()
        extra = [history] + ([ProgressBar()] if verbose else [])
        callback_list = CallbackList(
            list(callbacks or []) + extra, self,
            {"steps": steps, "initial_steps": self.total_steps, "verbose": verbose},
        )
        self.check_batch_memory(collector.num_envs)
        batch_steps = self.config.rollout_steps * collector.num_envs
        target = self.total_steps + steps
        self.stop_training = False
        self._step_target = target
        try:
            self._train_to(target, env, batch_steps, callback_list)
        finally:
            self._step_target = None
        self.history = history
        return history

    def _train_to(self, target: int, env: EnvLike, batch_steps: int, callback_list: CallbackList) -> None:
        """fit's loop: collect → train_on_batch → callbacks, until `target` env steps or a stop."""
        callback_list.on_train_begin()
        logs: dict = {}
        while self.total_steps < target and not self.stop_training:
            iteration = self.iterations
            callback_list.on_epoch_begin(iteration)
            start = time.perf_counter()
            try:
                rollout = self.collect(env, batch_steps)
            except EnvError:
                try:
                    self.close()
                finally:
                    callback_list.on_train_end(logs)  # a Checkpoint callback writes the final checkpoint here
                raise
            collected = time.perf_counter()
            logs = self.train_on_batch(rollout)
            finished = time.perf_counter()
            self.episode_window.add(rollout.episode_returns, rollout.episode_lengths)
            logs.update(self.episode_window.means(), episodes=len(rollout.episode_returns),
                        skipped_env_steps=rollout.skipped, total_steps=self.total_steps,
                        steps_per_second=rollout.num_steps / (finished - start), collect_seconds=collected - start,
                        update_seconds=finished - collected)
            logs.update(getattr(self._sources.current, "timing", {}))  # distributed collection's breakdown
            callback_list.on_epoch_end(iteration, logs)
        callback_list.on_train_end(logs)

    # ----------------------------------------------------- persistence & export
    def save(self, path: str, max_to_keep: int = 3) -> str:
        """Writes a checkpoint of everything needed to resume into directory `path`.

        Returns:
            The checkpoint prefix written.
        """
        if not self.built:
            raise ValueError("Nothing to save: the agent is not built yet.")
        return checkpoint_module.save(self, path, max_to_keep)

    def restore(self, path: str) -> None:
        """Restores this agent from a checkpoint directory or prefix written by `save`.

        An agent not built yet is built for the checkpoint's spaces. Its hyperparameters must be the
        checkpoint's except those a continued run may change (`tfpg.config.CHANGEABLE_ON_RESUME`, such as
        `learning_rate`), which are applied; other differences raise a `ValueError` naming them."""
        checkpoint_module.restore(self, path)

    def export(self, path: str, overwrite: bool = False) -> str:
        """Writes a standalone SavedModel policy (see `tfpg.export.export_policy`). Returns `path`.

        A folder holding files tfpg did not write is refused unless `overwrite`, which replaces only
        the SavedModel's entries there."""
        from tfpg.export import export_policy
        return export_policy(self, path, overwrite)

    def close(self) -> None:
        """Closes an env (or Ray workers) this agent created."""
        self._sources.close()

    def __reduce_ex__(self, protocol):  # what pickle, copy.copy and copy.deepcopy all call
        raise TypeError("A tfpg agent cannot be pickled or copied: it holds TensorFlow variables, compiled functions "
                        "and open envs. Save it with agent.save(path) and make a copy with tfpg.load(path) (in any "
                        "process), or export its policy with agent.export(path).")
