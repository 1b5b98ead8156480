"""PPO on Pendulum-v1 over several seeds, with the settings of the learning test.

    python benchmarks/ppo_pendulum_seeds.py --seeds=0,1,2,3,4,5,6,7 [--initial_log_std=-0.69]

Each seed trains `tfpg.PPO(gamma=0.9, learning_rate=1e-3, rollout_steps=1024)` for
73 × 4 × 1024 env steps with 4 envs (as `tests/test_learning.py` does) and prints
the mean return of 10 deterministic evaluation episodes.
"""

import tfpg  # before TensorFlow: tfpg loads it with its start-up notices held back
import tensorflow as tf
from absl import flags

from tfpg.launcher import run_program

flags.DEFINE_list("seeds", ["0", "1", "2", "3", "4", "5", "6", "7"], "Seeds.")
flags.DEFINE_float("initial_log_std", None, "Override of PPO's initial log-std (default: PPO's own).")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    tf.get_logger().setLevel("ERROR")
    overrides = {} if FLAGS.initial_log_std is None else {"initial_log_std": FLAGS.initial_log_std}
    for seed in map(int, FLAGS.seeds):
        agent = tfpg.PPO(seed=seed, gamma=0.9, learning_rate=1e-3, rollout_steps=1024, **overrides)
        agent.fit("Pendulum-v1", steps=73 * 4 * 1024, num_envs=4, verbose=0)
        result = agent.evaluate("Pendulum-v1", episodes=10)["mean_return"]
        print(f"seed {seed}: {result:.0f}", flush=True)


if __name__ == "__main__":
    run_program(main)
