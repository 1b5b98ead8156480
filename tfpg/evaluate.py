"""Run an exported SavedModel policy in an environment.

    python -m tfpg.evaluate --policy=runs/cartpole/policy --env=CartPole-v1 --episodes=10
    python -m tfpg.evaluate --policy=runs/cartpole        # a run folder; the env the policy records

Needs only TensorFlow and Gymnasium at run time: the policy is loaded with
`tf.saved_model.load` and queried through its `serving_default` signature.
Without --env, the env is the one recorded in the export's
`assets.extra/tfpg.json` (tfpg records the id of the env it trained on).
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

from tfpg.launcher import run_program  # noqa: E402

FLAGS = flags.FLAGS

flags.DEFINE_string("policy", None, "Directory of a SavedModel written by agent.export or tfpg.train, or a "
                    "tfpg.train run folder (its policy/).")
flags.DEFINE_string("env", None, "Gymnasium environment id (default: the env the policy records).")
flags.DEFINE_integer("episodes", 10, "Episodes to run.", lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seed of the first episode's reset (episode i uses seed + i).", lower_bound=0)
flags.DEFINE_boolean("sample", False, "Sample actions instead of taking the deterministic ones.")
flags.DEFINE_string("video_dir", None, "Record every episode as an MP4 into this directory (needs tfpg[video]; "
                    "MuJoCo renders headless with EGL).")
flags.mark_flag_as_required("policy")


def run_episodes(policy, env, episodes: int, seed: int, sample: bool = False) -> list[float]:
    """Returns the undiscounted return of each episode of `policy` (a loaded SavedModel) in `env`.

    Dict and Tuple observations go to the policy's `observations_<key>` inputs, one per entry. A recurrent
    policy's state starts from `initial_state` with every episode and is carried from step to step.
    """
    import numpy as np
    import tensorflow as tf

    from tfpg.episodes import play_episodes
    from tfpg.observations import ObservationSpec
    from tfpg.space_descriptions import describe_observation_space

    function = policy.signatures["sample" if sample else "serving_default"]
    inputs = function.structured_input_signature[1]
    observation_spec = ObservationSpec(describe_observation_space(env.observation_space))
    names = [f"observations_{leaf.path}" if observation_spec.nested else "observations"
             for leaf in observation_spec.leaves]

    def batch_of_one(observation):
        return {name: tf.constant(np.asarray(value)[None], dtype=inputs[name].dtype)
                for name, value in zip(names, observation_spec.flatten(observation))}

    state_names = list(policy.signatures["initial_state"].structured_outputs) \
        if "initial_state" in policy.signatures else []  # a recurrent policy's states, carried between steps
    state = {}

    def act(observation, episode_start):
        nonlocal state
        if state_names and episode_start:
            state = policy.signatures["initial_state"](batch_size=tf.constant(1))
        memory = {"episode_start": tf.constant([episode_start]), **state} if state_names else {}
        out = function(**batch_of_one(observation), **memory)
        state = {name: out[name] for name in state_names}
        return out["actions"].numpy()[0]

    returns, _ = play_episodes(env, act, episodes, seed)
    return returns


def _policy_directory(path: str) -> str:
    """The SavedModel directory `--policy` names: itself, or a run folder's `policy/`."""
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    if os.path.exists(os.path.join(path, "policy", "saved_model.pb")):
        return os.path.join(path, "policy")
    raise app.UsageError(f"--policy={path!r} is not a SavedModel directory (no saved_model.pb) nor a tfpg.train run "
                         f"folder (no policy/saved_model.pb). Pass the directory agent.export wrote, or the run's "
                         f"--logdir.")


def _export_record(policy_path: str) -> dict | None:
    """The export's `assets.extra/tfpg.json`, or None for a SavedModel tfpg did not write."""
    import json

    record = os.path.join(policy_path, "assets.extra", "tfpg.json")
    if not os.path.exists(record):
        return None
    try:
        with open(record) as file:
            exported = json.load(file)
        if not isinstance(exported, dict) or "observation_space" not in exported or "action_space" not in exported:
            raise ValueError("no observation and action spaces")
        return exported
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise app.UsageError(f"{record} is damaged ({error.__class__.__name__}: {error}); export the policy again "
                             f"(agent.export or the run's final export).") from None


def _check_policy_matches_env(policy_path: str, exported: dict | None, env, env_id: str) -> None:
    """Raises a `UsageError` if the policy's recorded spaces are not the env's (tfpg exports record them)."""
    from tfpg.space_descriptions import describe_action_space, describe_observation_space, same_action_spaces, \
        same_observation_spaces

    if exported is None:
        return
    try:
        spaces = (describe_observation_space(env.observation_space), describe_action_space(env.action_space))
    except ValueError as error:
        raise app.UsageError(f"--env={env_id!r} cannot be evaluated: {error}") from None
    if not same_observation_spaces(spaces[0], exported["observation_space"]) \
            or not same_action_spaces(spaces[1], exported["action_space"]):
        raise app.UsageError(
            f"--policy={policy_path!r} was exported for observation space {exported['observation_space']} and "
            f"action space {exported['action_space']}, but --env={env_id!r} has {spaces[0]} and {spaces[1]}. "
            f"Evaluate it on an env with the spaces it was trained for."
        )


def _load_policy(policy_path: str):
    """The loaded SavedModel, checked to have the signature `run_episodes` calls."""
    import tensorflow as tf

    try:
        policy = tf.saved_model.load(policy_path)
    except Exception as error:  # a damaged SavedModel surfaces as several error types
        raise app.UsageError(f"--policy={policy_path!r} could not be loaded as a SavedModel "
                             f"({error.__class__.__name__}: {str(error).splitlines()[0][:200]}).") from None
    signatures = getattr(policy, "signatures", {})
    if "serving_default" not in signatures or "sample" not in signatures:
        raise app.UsageError(f"--policy={policy_path!r} is a SavedModel but not a tfpg policy: it has no "
                             f"serving_default and sample signatures (it has: {', '.join(signatures) or 'none'}).")
    return policy


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    import numpy as np

    from tfpg.envs import check_env_id, make_env
    from tfpg.errors import EnvError
    from tfpg.video import finish_recording, recorded_env

    policy_path = _policy_directory(FLAGS.policy)
    exported = _export_record(policy_path)
    env_id = FLAGS.env or (exported or {}).get("env")
    if env_id is None:
        raise app.UsageError(f"--policy={policy_path!r} does not record the env it was trained on (it was not "
                             f"trained on a Gymnasium id); pass --env=<id>.")
    try:
        check_env_id(env_id)
    except ValueError as error:
        raise app.UsageError(f"--env: {error}") from None
    policy = _load_policy(policy_path)
    try:
        env = make_env(env_id) if FLAGS.video_dir is None else \
            recorded_env(env_id, FLAGS.video_dir, os.path.basename(os.path.abspath(policy_path)))
    except ValueError as error:
        raise app.UsageError(f"--video_dir: {error}" if FLAGS.video_dir is not None else str(error)) from None
    videos = None
    try:
        _check_policy_matches_env(policy_path, exported, env, env_id)
        try:
            returns = run_episodes(policy, env, FLAGS.episodes, FLAGS.seed, FLAGS.sample)
        except EnvError as error:
            print(f"Evaluation stopped: {error}", file=sys.stderr)
            sys.exit(1)
        videos = finish_recording(env) if FLAGS.video_dir is not None else None
    finally:
        env.close()
    print(f"{env_id}: mean return {np.mean(returns):.1f} ± {np.std(returns):.1f} "
          f"over {len(returns)} episodes (min {np.min(returns):.1f}, max {np.max(returns):.1f})")
    for video in videos or []:
        print(f"Video: {video}")


def run():
    """Console entry point."""
    run_program(main)


if __name__ == "__main__":
    run()
