"""Malformed input from a seeded generator: every entry point answers with a clear ValueError."""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

import tfpg
from tfpg.algorithms import A2CConfig

from helpers import run

RNG = np.random.default_rng(2026)
JUNK = [None, "x", -1, 0, 2.5, float("nan"), float("inf"), -1e300, True, [], {}, (1, "a"), object()]


def _observation_junk(shape):
    """Observations of the wrong shape, dtype or value for a Box of `shape`; none is valid."""
    cases = [np.zeros(()), np.zeros(shape[:-1] + (shape[-1] + 1,)), np.zeros((2, 3) + shape),
             np.full(shape, np.nan), np.full((4, *shape), np.inf), np.array(["a"] * shape[0]),
             np.zeros(shape, dtype=object), [[1.0, 2.0], [3.0]], "obs", None]
    for _ in range(20):
        random = RNG.normal(size=tuple(RNG.integers(1, 5, size=RNG.integers(1, 4))))
        if random.shape != shape and random.shape[1:] != shape:
            cases.append(random)
    return cases


@pytest.fixture(scope="module")
def agent():
    built = tfpg.A2C(seed=0)
    built.build(gym.spaces.Box(-1, 1, (3,)), gym.spaces.Box(-1, 1, (1,)))
    return built


def test_predict_rejects_malformed_observations(agent):
    for bad in _observation_junk((3,)):
        with pytest.raises(ValueError, match="[Oo]bservation"):
            agent.predict(bad)


def test_hyperparameters_reject_wrong_types_and_ranges():
    for field in dataclasses.fields(A2CConfig):
        for value in JUNK:
            if isinstance(value, type(field.default)) and not isinstance(value, bool) and value == value \
                    and field.default is not None and not isinstance(field.default, bool):
                continue  # may be a legal value of the right type
            if isinstance(field.default, bool) and isinstance(value, bool):
                continue
            if isinstance(field.default, tuple) and value == []:
                continue  # no hidden layers: the heads act on the (encoder's) features
            if isinstance(field.default, float) and isinstance(value, int) and not isinstance(value, bool):
                continue  # ints are accepted for floats when in range; ranges are tested below
            with pytest.raises(ValueError, match=field.name):
                tfpg.A2C(**{field.name: value})
    for name, value in [("gamma", -0.1), ("gamma", 1.01), ("gae_lambda", 2.0), ("learning_rate", 0.0),
                        ("max_grad_norm", -1.0), ("rollout_steps", 0), ("value_coef", -1.0)]:
        with pytest.raises(ValueError, match=f"{name}={value}.*expected"):
            tfpg.A2C(**{name: value})


@pytest.mark.parametrize("seed", [-1, 2**31, 1.5, "0", None, True])
def test_seed_is_checked(seed):
    with pytest.raises(ValueError, match="seed must be an integer"):
        tfpg.A2C(seed=seed)


def test_collect_fit_and_evaluate_reject_bad_counts_and_envs(agent):
    for steps in [0, -3, 1.5, "10", None, True]:
        with pytest.raises(ValueError, match="steps must be a positive integer"):
            tfpg.A2C().collect("Pendulum-v1", steps)
        with pytest.raises(ValueError, match="steps must be a positive integer"):
            tfpg.A2C().fit("Pendulum-v1", steps, verbose=0)
        with pytest.raises(ValueError, match="episodes must be a positive integer"):
            agent.evaluate("Pendulum-v1", episodes=steps)
    for env in [42, None, ["CartPole-v1"], "NotAnEnv-v0"]:
        with pytest.raises(ValueError, match="env|environment"):
            tfpg.A2C().collect(env, 8)
    with pytest.raises(ValueError, match="num_envs must be a positive integer"):
        tfpg.A2C().fit("CartPole-v1", 8, num_envs=0, verbose=0)
    with pytest.raises(ValueError, match="observation space"):
        agent.collect("CartPole-v1", 8)  # built for a 3-dimensional Box, CartPole has 4


def _numeric_junk(shape, dtype):
    """Numeric batches of the wrong rank or shape for elements of `shape`, from the seeded generator."""
    cases = [np.zeros((), dtype), np.zeros(shape, dtype), np.zeros((2, *shape, 1), dtype)]
    for _ in range(10):
        random_shape = tuple(int(d) for d in RNG.integers(1, 5, size=RNG.integers(1, 4)))
        if random_shape[1:] != tuple(shape):
            cases.append(RNG.normal(size=random_shape).astype(dtype))
    return cases


def test_the_exported_policy_refuses_malformed_inputs_naming_what_is_allowed(tmp_path):
    tf = pytest.importorskip("tensorflow")
    box = tfpg.PPO(seed=0)
    box.build(gym.spaces.Box(-np.inf, np.inf, (3,), np.float32), gym.spaces.Box(-1.0, 1.0, (2,), np.float32))
    discrete = tfpg.A2C(seed=0)
    discrete.build(gym.spaces.Discrete(5, start=1), gym.spaces.MultiDiscrete([3, 4]))
    box_policy = tf.saved_model.load(box.export(str(tmp_path / "box")))
    discrete_policy = tf.saved_model.load(discrete.export(str(tmp_path / "discrete")))

    def refused(function, message, **inputs):
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            function(**{k: tf.constant(v) for k, v in inputs.items()})

    good_actions = np.zeros((4, 2), np.float32)
    for bad in _numeric_junk((3,), np.float32):
        for name in ("serving_default", "sample", "value"):
            refused(box_policy.signatures[name], r"observations must have shape \[batch, 3\]", observations=bad)
    for bad in _numeric_junk((2,), np.float32):
        refused(box_policy.signatures["log_prob"], r"actions must have shape \[batch, 2\]",
                observations=np.zeros((len(np.atleast_1d(bad)), 3), np.float32), actions=bad)
    for observation_rows, action_rows in ((1, 2), (2, 1), (3, 5)):  # never broadcast one against the other
        refused(box_policy.signatures["log_prob"], r"observations, actions must hold the same number of rows",
                observations=np.zeros((observation_rows, 3), np.float32),
                actions=np.zeros((action_rows, 2), np.float32))
        refused(discrete_policy.signatures["log_prob"], r"observations, actions must hold the same number of rows",
                observations=np.ones(observation_rows, np.int64), actions=np.zeros((action_rows, 2), np.int64))
    for value in (np.nan, np.inf, -np.inf):
        observations = RNG.normal(size=(4, 3)).astype(np.float32)
        observations[RNG.integers(4), RNG.integers(3)] = value
        refused(box_policy.signatures["serving_default"], "observations contain NaN or infinite values",
                observations=observations)
        refused(box_policy.signatures["log_prob"], "actions contain NaN or infinite values",
                observations=np.zeros((4, 3), np.float32), actions=np.where(good_actions == 0, value, 0).astype(np.float32))
    # Discrete(5, start=1) observations are 1..5; MultiDiscrete([3, 4]) actions are 0..2 and 0..3
    integers = lambda values: np.array(values, np.int64)  # noqa: E731
    refused(discrete_policy.signatures["serving_default"], "observations must be at least 1",
            observations=integers([0, 3]))
    refused(discrete_policy.signatures["serving_default"], "observations must be at most 5", observations=integers([6]))
    refused(discrete_policy.signatures["log_prob"], r"actions must be at most \[2, 3\]",
            observations=integers([1, 2]), actions=integers([[0, 0], [3, 0]]))
    assert box_policy.signatures["serving_default"](observations=tf.zeros((4, 3)))["actions"].shape == (4, 2)
    assert discrete_policy.signatures["log_prob"](observations=tf.constant([1, 5], tf.int64),
                                                  actions=tf.constant([[2, 3], [0, 0]], tf.int64))[
        "log_prob"].shape == (2,)


def test_a_batch_that_cannot_fit_in_memory_is_refused_before_anything_runs(tmp_path):
    from tfpg.memory_check import available_memory

    steps_that_fit_nowhere = available_memory() // 10  # each step stores 2 observations of 4 float32s and more
    agent = tfpg.A2C(seed=0, rollout_steps=int(steps_that_fit_nowhere))
    with pytest.raises(ValueError, match=r"needs about .* GiB .* Lower rollout_steps"):
        agent.fit("CartPole-v1", steps=8, verbose=0)
    assert agent.total_steps == 0
    result = run(["-m", "tfpg.train", f"--rollout_steps={10**12}", "--steps=8", f"--logdir={tmp_path / 'run'}"])
    assert result.returncode == 2 and "GiB of memory is available" in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_vector_env_whose_size_disagrees_with_num_envs_is_refused():
    vector_env = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")] * 2,
                                          autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    agent = tfpg.A2C(seed=0, rollout_steps=4)
    with pytest.raises(ValueError, match="num_envs=3 but the VectorEnv given has 2 copies"):
        agent.fit(vector_env, steps=8, num_envs=3, verbose=0)
    agent.fit(vector_env, steps=8, verbose=0)  # its own two copies
    assert agent.total_steps == 8


class _DeclaresThreeStates(gym.Env):
    """Declares Discrete(3) observations but returns 7 after its second step."""

    observation_space = gym.spaces.Discrete(3)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.steps = 0
        return 0, {}

    def step(self, action):
        self.steps += 1
        return (7 if self.steps >= 2 else 1), 1.0, False, self.steps >= 50, {}


class _NeverEnds(gym.Env):
    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        return np.zeros(2, np.float32), 1.0, False, False, {}


def test_an_observation_outside_the_declared_discrete_space_is_an_env_error(tmp_path):
    agent = tfpg.A2C(seed=0, rollout_steps=8)
    checkpoint = tfpg.callbacks.Checkpoint(str(tmp_path), every=None)
    with pytest.raises(tfpg.EnvError, match=r"Env copy 0 returned the observation 7, outside its declared "
                                            r"observation space Discrete\(3, start=0\)"):
        agent.fit(_DeclaresThreeStates(), steps=64, verbose=0, callbacks=[checkpoint])
    assert tfpg.load(str(tmp_path)).total_steps == 0  # the final checkpoint, before the failed batch


class _GrowsItsObservation(gym.Env):
    """Declares a Dict of a Box(3) "position" and a Box(2) "goal"; its third step returns a 4-vector position."""

    observation_space = gym.spaces.Dict({"position": gym.spaces.Box(-1.0, 1.0, (3,), np.float32),
                                         "goal": gym.spaces.Box(-1.0, 1.0, (2,), np.float32)})
    action_space = gym.spaces.Discrete(2)

    def _observation(self, size):
        return {"position": np.zeros(size, np.float32), "goal": np.zeros(2, np.float32)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.steps = 0
        return self._observation(3), {}

    def step(self, action):
        self.steps += 1
        return self._observation(4 if self.steps == 3 else 3), 1.0, False, self.steps >= 50, {}


def test_an_observation_of_another_shape_than_its_space_is_an_env_error_naming_the_part(tmp_path):
    agent = tfpg.A2C(seed=0, rollout_steps=8)
    checkpoint = tfpg.callbacks.Checkpoint(str(tmp_path), every=None)
    with pytest.raises(tfpg.EnvError, match=r"env copy 0 returned an observation from step .* "
                                            r"observation\['position'\] has shape \(4,\), but its space declares "
                                            r"\(3,\)"):
        agent.fit(_GrowsItsObservation(), steps=64, verbose=0, callbacks=[checkpoint])
    assert tfpg.load(str(tmp_path)).total_steps == 0


def test_an_evaluation_episode_that_never_ends_stops_with_a_clear_error(monkeypatch):
    monkeypatch.setattr(tfpg.envs, "UNBOUNDED_EPISODE_LIMIT", 500)
    agent = tfpg.A2C(seed=0)
    with pytest.raises(tfpg.EnvError, match="did not end within 500 steps, and the env has no time limit"):
        agent.evaluate(_NeverEnds(), episodes=1)
    limited = gym.wrappers.TimeLimit(_NeverEnds(), max_episode_steps=600)  # a time limit ends it, past 500
    assert agent.evaluate(limited, episodes=1)["lengths"] == [600]


def test_predict_refuses_fractional_values_for_integer_observations_instead_of_truncating_them():
    from gymnasium import spaces

    agent = tfpg.PPO(seed=0)
    agent.build(spaces.Box(0, 255, (36, 36, 3), np.uint8), spaces.Discrete(3))
    frame = np.random.default_rng(0).integers(0, 256, (36, 36, 3)).astype(np.uint8)
    expected = agent.predict(frame)
    assert agent.predict(frame.astype(np.float32)) == expected  # whole numbers convert exactly
    with pytest.raises(ValueError, match=r"whole numbers \(uint8.*look scaled to \[0, 1\]"):
        agent.predict(frame / 255.0)
    with pytest.raises(ValueError, match="fractional parts; converting them would truncate"):
        agent.predict(frame + 0.5)


def test_train_on_batch_refuses_a_rollout_of_another_agent_and_one_of_other_shapes():
    first, second = tfpg.PPO(seed=0, rollout_steps=8, minibatch_size=8), tfpg.PPO(seed=1, rollout_steps=8,
                                                                                  minibatch_size=8)
    rollout = first.collect("CartPole-v1", 8)
    second.collect("CartPole-v1", 8)
    with pytest.raises(ValueError, match="collected by another agent.*π_old"):
        second.train_on_batch(rollout)
    first.train_on_batch(rollout)
    handmade = dataclasses.replace(rollout, collected_by=None,
                                   observations=np.zeros((8, 1, 3), np.float32))
    with pytest.raises(ValueError, match=r"observations have shape \(8, 1, 3\), but this agent takes \(8, 1, 4\)"):
        first.train_on_batch(handmade)
    with pytest.raises(ValueError, match=r"actions have shape \(8, 1, 2\)"):
        first.train_on_batch(dataclasses.replace(rollout, collected_by=None, actions=np.zeros((8, 1, 2), np.int32)))
    first.close()
    second.close()


def test_unwritable_paths_copies_of_an_agent_and_a_mismatched_evaluation_env_get_clear_errors(tmp_path):
    import copy
    import pickle

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    agent = tfpg.A2C(seed=0, rollout_steps=8)
    agent.build(*[getattr(gym.make("CartPole-v1"), name) for name in ("observation_space", "action_space")])
    with pytest.raises(ValueError, match="Cannot export to .*Choose a path in a directory you can write to"):
        agent.export(str(blocker / "policy"))
    with pytest.raises(ValueError, match="TensorBoard log_dir .* cannot be a directory of event files"):
        tfpg.callbacks.TensorBoard(str(blocker))
    for copier in (copy.deepcopy, pickle.dumps, copy.copy):
        with pytest.raises(TypeError, match="cannot be pickled or copied.*tfpg.load"):
            copier(agent)
    evaluation = tfpg.callbacks.Evaluation("Pendulum-v1", every=1000)
    with pytest.raises(ValueError, match="This agent was built for"):
        agent.fit("CartPole-v1", steps=16, num_envs=2, callbacks=[evaluation], verbose=0)
    assert agent.total_steps == 0  # refused before the first iteration, not at the first evaluation
