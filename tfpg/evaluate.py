"""Run an exported SavedModel policy in an environment.

    python -m tfpg.evaluate --policy=runs/cartpole/policy --env=CartPole-v1 --episodes=10

Needs only TensorFlow and Gymnasium at run time: the policy is loaded with
`tf.saved_model.load` and queried through its `serving_default` signature.
"""

from __future__ import annotations

import os

from absl import app, flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FLAGS = flags.FLAGS

flags.DEFINE_string("policy", None, "Directory of a SavedModel written by agent.export or tfpg.train.")
flags.DEFINE_string("env", None, "Gymnasium environment id.")
flags.DEFINE_integer("episodes", 10, "Episodes to run.", lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seed of the first episode's reset (episode i uses seed + i).", lower_bound=0)
flags.DEFINE_boolean("sample", False, "Sample actions instead of taking the deterministic ones.")
flags.mark_flags_as_required(["policy", "env"])


def run_episodes(policy, env, episodes: int, seed: int, sample: bool = False) -> list[float]:
    """Returns the undiscounted return of each episode of `policy` (a loaded SavedModel) in `env`.

    Dict and Tuple observations go to the policy's `observations_<key>` inputs, one per entry.
    """
    import numpy as np
    import tensorflow as tf

    from tfpg.envs import describe_observation_space
    from tfpg.observations import ObservationSpec

    function = policy.signatures["sample" if sample else "serving_default"]
    inputs = function.structured_input_signature[1]
    observation_spec = ObservationSpec(describe_observation_space(env.observation_space))
    names = [f"observations_{leaf.path}" if observation_spec.nested else "observations"
             for leaf in observation_spec.leaves]

    def batch_of_one(observation):
        return {name: tf.constant(np.asarray(value)[None], dtype=inputs[name].dtype)
                for name, value in zip(names, observation_spec.flatten(observation))}

    returns = []
    for episode in range(episodes):
        observation, _ = env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            action = function(**batch_of_one(observation))["actions"].numpy()[0]
            observation, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return returns


def _check_policy_matches_env(policy_path: str, env) -> None:
    """Raises a `UsageError` if the policy's recorded spaces are not the env's (tfpg exports record them)."""
    import json

    from tfpg.envs import describe_action_space, describe_observation_space, same_observation_spaces

    record = os.path.join(policy_path, "assets.extra", "tfpg.json")
    if not os.path.exists(record):
        return
    with open(record) as file:
        exported = json.load(file)
    try:
        spaces = (describe_observation_space(env.observation_space), describe_action_space(env.action_space))
    except ValueError as error:
        raise app.UsageError(f"--env={FLAGS.env!r} cannot be evaluated: {error}") from None
    if not same_observation_spaces(spaces[0], exported["observation_space"]) \
            or spaces[1] != exported["action_space"]:
        raise app.UsageError(
            f"--policy={policy_path!r} was exported for observation space {exported['observation_space']} and "
            f"action space {exported['action_space']}, but --env={FLAGS.env!r} has {spaces[0]} and {spaces[1]}. "
            f"Evaluate it on an env with the spaces it was trained for."
        )


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    import numpy as np
    import tensorflow as tf

    from tfpg.envs import check_env_id, make_env

    if not os.path.exists(os.path.join(FLAGS.policy, "saved_model.pb")):
        raise app.UsageError(f"--policy={FLAGS.policy!r} is not a SavedModel directory (no saved_model.pb).")
    try:
        check_env_id(FLAGS.env)
    except ValueError as error:
        raise app.UsageError(f"--env: {error}") from None
    env = make_env(FLAGS.env)
    try:
        _check_policy_matches_env(FLAGS.policy, env)
        policy = tf.saved_model.load(FLAGS.policy)
        returns = run_episodes(policy, env, FLAGS.episodes, FLAGS.seed, FLAGS.sample)
    finally:
        env.close()
    print(f"{FLAGS.env}: mean return {np.mean(returns):.1f} ± {np.std(returns):.1f} "
          f"over {len(returns)} episodes (min {np.min(returns):.1f}, max {np.max(returns):.1f})")


def run():
    """Console entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
