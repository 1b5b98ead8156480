"""Dict and Tuple observations: described, collected as nests, normalised per entry, learned, saved, exported."""

import json
import subprocess
import sys

import gymnasium as gym
import keras
import numpy as np
import pytest
import tensorflow as tf
from gymnasium import spaces

import tfpg
from helpers import BLOCKED_IMPORTS
from image_envs import LookAndListenEnv
from tfpg.nested_encoder import NestedEncoder
from tfpg.space_descriptions import describe_observation_space


class CountAndColourEnv(gym.Env):
    """A Tuple observation (Discrete(3) colour, Box(2) position) with a vector action; reward −‖a − p‖."""

    def __init__(self):
        self.observation_space = spaces.Tuple((spaces.Discrete(3), spaces.Box(-5, 5, (2,), np.float32)))
        self.action_space = spaces.Box(-1, 1, (2,), np.float32)

    def _observe(self):
        self.position = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return int(self.np_random.integers(3)), self.position

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.steps = 0
        return self._observe(), {}

    def step(self, action):
        reward = -float(np.linalg.norm(action - self.position))
        self.steps += 1
        return self._observe(), reward, False, self.steps >= 5, {}


def test_dict_and_tuple_spaces_are_described_leaf_by_leaf_and_bad_ones_refused():
    image = spaces.Box(0, 255, (12, 12, 1), np.uint8)
    described = describe_observation_space(spaces.Dict({"image": image, "flag": spaces.Discrete(2)}))
    assert list(described["spaces"]) == ["flag", "image"] and described["spaces"]["image"]["dtype"] == "uint8"
    assert describe_observation_space(spaces.Tuple((spaces.Discrete(2),)))["spaces"][0]["type"] == "Discrete"
    for bad, why in [(spaces.Dict({"a": spaces.Text(3)}), "Text"), (spaces.Dict({}), "no subspaces"),
                     (spaces.Dict({"not a key": spaces.Discrete(2)}), "not an identifier")]:
        with pytest.raises(ValueError, match=why):
            describe_observation_space(bad)


def test_ppo_learns_an_image_and_vector_dict_env_with_the_default_encoders():
    env = LookAndListenEnv()
    # a short budget: a constant rate (annealed to 0 over 12 updates, the later ones learn too little), and 8
    # epochs (with 4, 12 updates leave seeds 0-2 at 3.5-6.5 of 8; with 8, all three at 8)
    agent = tfpg.PPO(seed=0, rollout_steps=512, minibatch_size=64, epochs=8, learning_rate_schedule="constant")
    agent.fit(env, steps=12 * 512, verbose=0)
    assert isinstance(agent.policy.features, NestedEncoder) and set(agent.policy.features.images) == {"image"}
    rollout = agent.collect(env, 16)
    assert rollout.observations["image"].dtype == np.uint8 and rollout.observations["image"].shape == (16, 1, 12, 12, 1)
    assert rollout.observations["flag"].shape == (16, 1, 1)
    normalizer = agent.observation_normalizer
    assert set(normalizer.normalizers) == {"flag"}  # the image is scaled, not normalised
    assert normalizer.get("flag").count.numpy() == agent.total_steps
    # a policy that sees one entry only scores 4 of 8 on average; both: 8
    assert agent.evaluate(LookAndListenEnv(), episodes=10)["mean_return"] >= 7.5


def test_nested_observations_are_normalised_per_entry_as_the_running_statistics_say():
    agent = tfpg.A2C(seed=0)
    rollout = agent.collect(CountAndColourEnv(), 300)
    positions = rollout.flat("observations")[1]
    normalizer = agent.observation_normalizer.get("1")
    np.testing.assert_allclose(normalizer.mean.numpy(), positions.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(normalizer.variance.numpy(), positions.var(axis=0), rtol=1e-4, atol=1e-6)
    preprocessed = agent.policy.encoder((tf.constant([2]), tf.constant(positions[:1])))
    np.testing.assert_array_equal(preprocessed[0].numpy(), [[0.0, 0.0, 1.0]])  # Discrete: one-hot
    expected = (positions[:1] - positions.mean(axis=0)) / np.sqrt(positions.var(axis=0) + 1e-8)
    np.testing.assert_allclose(preprocessed[1].numpy(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("algorithm", [tfpg.REINFORCE, tfpg.A2C, tfpg.NPG, tfpg.TRPO, tfpg.PPO, tfpg.ACKTR],
                         ids=lambda a: a.name)
def test_every_algorithm_trains_on_dict_and_tuple_observations(algorithm):
    for env in (LookAndListenEnv(), CountAndColourEnv()):
        agent = algorithm(seed=0, rollout_steps=64)
        rollout = agent.collect(env, 64)
        start = [v.numpy() for v in agent.policy.trainable_variables]
        logs = agent.train_on_batch(rollout)
        assert all(np.isfinite(value) for value in logs.values() if isinstance(value, float))
        moved = [not np.array_equal(a, v.numpy()) for a, v in zip(start, agent.policy.trainable_variables)]
        assert any(moved) or not logs.get("line_search_success", 1.0)


def test_a_user_encoder_receives_the_preprocessed_dict():
    seen = []

    class Recording(keras.layers.Layer):
        def call(self, observations):
            seen.append(observations)
            return tf.concat([keras.ops.reshape(observations["image"], (-1, 144)), observations["flag"]], axis=-1)

    env = LookAndListenEnv()
    agent = tfpg.A2C(seed=0, encoder=lambda space: Recording())
    agent.build(env.observation_space, env.action_space)
    observation, _ = env.reset(seed=0)
    assert agent.predict(observation) in range(4)
    agent.policy(agent._as_model_input({key: value[None] for key, value in observation.items()}))  # eagerly
    last = seen[-1]
    assert set(last) == {"image", "flag"} and last["image"].dtype == tf.float32
    np.testing.assert_allclose(last["image"].numpy()[0], observation["image"] / 255.0, rtol=1e-6)


def test_nested_predict_checks_each_entry_by_name():
    env = LookAndListenEnv()
    agent = tfpg.PPO(seed=0)
    agent.build(env.observation_space, env.action_space)
    observation, _ = env.reset(seed=0)
    assert agent.predict(observation).shape == ()
    batch = {key: np.stack([value] * 3) for key, value in observation.items()}
    assert agent.predict(batch).shape == (3,)
    as_lists = {"image": observation["image"].tolist(), "flag": observation["flag"].tolist()}
    assert agent.predict(as_lists) == agent.predict(observation)  # an entry may be a (nested) list
    with pytest.raises(ValueError, match="structure of the observation space"):
        agent.predict(observation["image"])
    with pytest.raises(ValueError, match=r"keys \['flag', 'image'\], got dict with keys \['image'\]"):
        agent.predict({"image": observation["image"]})
    with pytest.raises(ValueError, match=r"Observations 'flag' have shape \(2,\)"):
        agent.predict({**observation, "flag": np.zeros(2, np.float32)})
    with pytest.raises(ValueError, match="some are batches"):
        agent.predict({**observation, "flag": np.zeros((3, 1), np.float32)})
    with pytest.raises(ValueError, match=r"Image observations 'image' must be in \[0, 255\]"):
        agent.predict({**observation, "image": observation["image"] * 2.0})


def test_a_dict_policy_checkpoints_and_exports_named_inputs_that_serve_with_tensorflow_alone(tmp_path):
    env = LookAndListenEnv()
    agent = tfpg.PPO(seed=3, rollout_steps=64, minibatch_size=32, epochs=1)
    agent.fit(env, steps=64, verbose=0)
    batch = agent.collect(env, 6).flat("observations")
    agent.save(str(tmp_path / "checkpoints"))
    loaded = tfpg.load(str(tmp_path / "checkpoints"))
    np.testing.assert_array_equal(loaded.predict(batch), agent.predict(batch))
    np.testing.assert_allclose(loaded.observation_normalizer.get("flag").mean.numpy(),
                               agent.observation_normalizer.get("flag").mean.numpy())
    loaded.fit(env, steps=64, verbose=0)  # resumes
    assert loaded.total_steps == agent.total_steps + 64 and loaded.iterations == 2
    path = agent.export(str(tmp_path / "policy"))
    np.save(tmp_path / "image.npy", batch["image"])
    np.save(tmp_path / "flag.npy", batch["flag"])
    script = BLOCKED_IMPORTS + f"""
import json
import numpy as np
import tensorflow as tf
policy = tf.saved_model.load({path!r})
inputs = {{"observations_image": tf.constant(np.load({str(tmp_path / 'image.npy')!r})),
          "observations_flag": tf.constant(np.load({str(tmp_path / 'flag.npy')!r}))}}
out = {{"actions": policy.signatures["serving_default"](**inputs)["actions"].numpy().tolist(),
        "value": policy.signatures["value"](**inputs)["value"].numpy().tolist()}}
try:
    policy.signatures["serving_default"](observations_image=inputs["observations_image"],
                                         observations_flag=inputs["observations_flag"][:2])
except tf.errors.InvalidArgumentError as error:
    out["mismatch"] = error.message
print(json.dumps(out))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    np.testing.assert_array_equal(out["actions"], agent.predict(batch))
    np.testing.assert_allclose(out["value"], agent.value_model(agent._as_model_input(batch)).numpy(), rtol=1e-5,
                               atol=1e-6)
    assert "must hold the same number of rows" in out["mismatch"]


def test_the_launchers_train_export_and_evaluate_a_dict_env(tmp_path):
    from helpers import run

    env_id = "tests.image_envs:LookAndListen-v0"
    logdir = str(tmp_path / "run")
    trained = run(["-m", "tfpg.train", "--algo=ppo", f"--env={env_id}", "--steps=128", "--num_envs=2",
                   "--rollout_steps=32", "--minibatch_size=32", "--epochs=1", "--eval_episodes=2", "--verbose=0",
                   f"--logdir={logdir}"])
    assert trained.returncode == 0, trained.stderr[-3000:]
    evaluated = run(["-m", "tfpg.evaluate", f"--policy={logdir}/policy", f"--env={env_id}", "--episodes=2"])
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert f"{env_id}: mean return" in evaluated.stdout
