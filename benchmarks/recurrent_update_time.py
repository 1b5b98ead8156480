"""Recurrent PPO's time per iteration, with the minibatch step compiled by XLA (the default) or not.

    TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 python benchmarks/recurrent_update_time.py \
        --sequence_length=128 --xla=true

CartPole-v1 with its velocities hidden, 8 env copies × 128 steps, LSTM 64, 10 epochs of minibatches of 256
steps; after one warm-up iteration, 10 iterations are timed. Prints env steps/s and the median collection
and update seconds per iteration. `--recurrent=none` times the feed-forward policy with the same settings.
"""

import json
import time

import gymnasium as gym
import numpy as np
from absl import flags

import tfpg
from tfpg.compiled import compiled
from tfpg.launcher import run_program

flags.DEFINE_integer("sequence_length", 128, "Steps of each training sequence.")
flags.DEFINE_boolean("xla", True, "Compile the minibatch step with XLA (PPO's default for recurrent policies).")
flags.DEFINE_string("recurrent", "lstm", "lstm, gru or none.")
flags.DEFINE_integer("iterations", 10, "Timed iterations.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    envs = gym.vector.SyncVectorEnv(
        [lambda: tfpg.envs.MaskObservation(gym.make("CartPole-v1"), keep=[0, 2])] * 8,
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    agent = tfpg.PPO(seed=0, recurrent=FLAGS.recurrent, recurrent_units=64, rollout_steps=128,
                     sequence_length=FLAGS.sequence_length, minibatch_size=256, epochs=10, learning_rate=1e-3,
                     learning_rate_schedule="constant", normalize_observations=False, scale_rewards=False)
    agent.fit(envs, 1024, verbose=0)  # builds, traces and compiles
    if not FLAGS.xla:
        agent._minibatch_step = agent._train_minibatch  # the same step without XLA (traced anew below)
        agent._train_step = compiled(agent._transactional_update,
                                   agent._train_step.input_signature)
        agent.fit(envs, 1024, verbose=0)
    start = time.perf_counter()
    history = agent.fit(envs, FLAGS.iterations * 1024, verbose=0).history
    seconds = time.perf_counter() - start
    print(json.dumps({"recurrent": FLAGS.recurrent, "sequence_length": FLAGS.sequence_length, "xla": FLAGS.xla,
                      "steps_per_second": FLAGS.iterations * 1024 / seconds,
                      "collect_seconds": float(np.median(history["collect_seconds"])),
                      "update_seconds": float(np.median(history["update_seconds"]))}))


if __name__ == "__main__":
    run_program(main)
