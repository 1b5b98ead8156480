"""Training throughput next to the raw env-stepping rate of the same vector env, in one run.

    python benchmarks/throughput.py --algo=a2c --env=Hopper-v5 --num_envs=8 --steps=100000

Prints the median over --repeats of: raw env steps/s (random actions, same
vector env), training env steps/s (collect + update, after a warm-up
iteration), the ratio, and the split of training time between collection
and updates.
"""

import json
import platform
import statistics
import time

import gymnasium as gym
from absl import flags

import tfpg
from tfpg.envs import make_vector_env
from tfpg.launcher import run_program

flags.DEFINE_string("algo", "a2c", "Algorithm.")
flags.DEFINE_string("env", "Hopper-v5", "Gymnasium id.")
flags.DEFINE_integer("num_envs", 1, "Env copies.")
flags.DEFINE_integer("steps", 50_000, "Training env steps per repeat.")
flags.DEFINE_integer("raw_steps", 50_000, "Random-action env steps per repeat.")
flags.DEFINE_integer("repeats", 3, "Repeats; medians are reported.")
flags.DEFINE_boolean("async_envs", False, "Subprocess env copies.")
flags.DEFINE_string("json", None, "Also append the result as a JSON line to this file.")
FLAGS = flags.FLAGS


def raw_rate(env: gym.vector.VectorEnv, steps: int) -> float:
    """Env steps/s with actions sampled from the action space."""
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(64)]
    start = time.perf_counter()
    iterations = max(1, steps // env.num_envs)
    for i in range(iterations):
        env.step(actions[i % 64])
    return iterations * env.num_envs / (time.perf_counter() - start)


def main(argv):
    del argv
    env = make_vector_env(FLAGS.env, FLAGS.num_envs, FLAGS.async_envs)
    agent = tfpg.ALGORITHMS[FLAGS.algo](seed=0)
    batch = agent.config.rollout_steps * FLAGS.num_envs
    agent.fit(env, batch, verbose=0)  # warm-up: builds and traces
    raw, train, collect_share = [], [], []
    for _ in range(FLAGS.repeats):
        raw.append(raw_rate(make_vector_env(FLAGS.env, FLAGS.num_envs, FLAGS.async_envs), FLAGS.raw_steps))
        start, steps0 = time.perf_counter(), agent.total_steps
        history = agent.fit(env, FLAGS.steps, verbose=0).history
        train.append((agent.total_steps - steps0) / (time.perf_counter() - start))
        collect, update = sum(history["collect_seconds"]), sum(history["update_seconds"])
        collect_share.append(collect / (collect + update))
    result = {
        "algo": FLAGS.algo, "env": FLAGS.env, "num_envs": FLAGS.num_envs, "batch": batch,
        "raw_steps_per_second": statistics.median(raw),
        "train_steps_per_second": statistics.median(train),
        "ratio": statistics.median(t / r for t, r in zip(train, raw)),
        "collect_share": statistics.median(collect_share),
        "repeats": FLAGS.repeats, "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
    }
    print(f"{FLAGS.algo} on {FLAGS.env} x{FLAGS.num_envs} (batch {batch}): "
          f"raw env {result['raw_steps_per_second']:.0f} steps/s, training {result['train_steps_per_second']:.0f} "
          f"steps/s = {100 * result['ratio']:.1f}% of raw; collection {100 * result['collect_share']:.0f}% "
          f"/ update {100 * (1 - result['collect_share']):.0f}% of training time")
    if FLAGS.json:
        with open(FLAGS.json, "a") as file:
            file.write(json.dumps(result) + "\n")
    env.close()


if __name__ == "__main__":
    run_program(main)
