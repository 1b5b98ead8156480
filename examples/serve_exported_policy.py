"""Run an exported policy with TensorFlow and Gymnasium only: tfpg is not imported.

    python -m tfpg.train --logdir=runs/cartpole          # writes runs/cartpole/policy
    python examples/serve_exported_policy.py --policy=runs/cartpole/policy --env=CartPole-v1
"""

import gymnasium as gym
import numpy as np
import tensorflow as tf
from absl import app, flags

flags.DEFINE_string("policy", None, "SavedModel directory written by agent.export or tfpg.train.")
flags.DEFINE_string("env", "CartPole-v1", "Gymnasium environment id.")
flags.DEFINE_integer("episodes", 3, "Episodes to run.")
flags.mark_flag_as_required("policy")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    policy = tf.saved_model.load(FLAGS.policy)
    act = policy.signatures["serving_default"]
    dtype = act.structured_input_signature[1]["observations"].dtype
    env = gym.make(FLAGS.env)
    for episode in range(FLAGS.episodes):
        observation, _ = env.reset(seed=episode)
        total, done = 0.0, False
        while not done:
            action = act(observations=tf.constant(np.asarray(observation)[None], dtype))["actions"][0]
            observation, reward, terminated, truncated, _ = env.step(action.numpy())
            total += float(reward)
            done = terminated or truncated
        print(f"episode {episode}: return {total:.1f}")


if __name__ == "__main__":
    app.run(main)
