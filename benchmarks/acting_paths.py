"""Collection throughput of the two acting paths: the NumPy mirror of tfpg's MLPs and one compiled
TensorFlow call per vector step (any other model), next to the raw env rate, in one run.

    python benchmarks/acting_paths.py --env=Hopper-v5 --num_envs=1 --rounds=5
    python benchmarks/acting_paths.py --env=ALE/Breakout-v5 --num_envs=8 --steps=4096 --rounds=3

For each round, `agent.collect` (acting, env steps, then the batch's log-probabilities, values and
advantages) runs once per path on the same agent and vector env, alternating which goes first, then
random actions step the same env for the raw rate. Reports medians of env steps/s and of the
per-round ratios. A policy the mirror cannot compute (tfpg's CNN on images) has only the TensorFlow
path.
"""

import statistics
import time

from absl import flags

import tfpg
from tfpg.envs import make_vector_env
from tfpg.launcher import run_program

flags.DEFINE_string("env", "Hopper-v5", "Gymnasium or ALE id.")
flags.DEFINE_integer("num_envs", 1, "Env copies (synchronous).")
flags.DEFINE_integer("steps", 8192, "Env steps per timed collection.")
flags.DEFINE_integer("rounds", 5, "Rounds; medians are reported.")
FLAGS = flags.FLAGS


def _raw_rate(env, steps):
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(64)]
    iterations = max(1, steps // env.num_envs)
    start = time.perf_counter()
    for i in range(iterations):
        env.step(actions[i % 64])
    return iterations * env.num_envs / (time.perf_counter() - start)


def _collect_rate(agent, env, steps, mirror):
    saved = agent._acting.mirror
    agent._acting.mirror = mirror
    try:
        start = time.perf_counter()
        rollout = agent.collect(env, steps)
        return rollout.num_steps / (time.perf_counter() - start)
    finally:
        agent._acting.mirror = saved


def main(argv):
    del argv
    env = make_vector_env(FLAGS.env, FLAGS.num_envs)
    agent = tfpg.PPO(seed=0)
    agent.collect(env, FLAGS.num_envs * 64)  # builds and traces
    mirror = agent._acting.mirror
    paths = {"tensorflow": None, **({"numpy mirror": mirror} if mirror is not None else {})}
    for name, path in paths.items():
        _collect_rate(agent, env, FLAGS.num_envs * 64, path)  # warm-up of each path
    rates = {name: [] for name in paths}
    raw = []
    for round_index in range(FLAGS.rounds):
        order = list(paths) if round_index % 2 == 0 else list(reversed(paths))
        for name in order:
            rates[name].append(_collect_rate(agent, env, FLAGS.steps, paths[name]))
        raw.append(_raw_rate(env, FLAGS.steps))
    print(f"{FLAGS.env} x{FLAGS.num_envs}, {FLAGS.rounds} rounds of {FLAGS.steps} steps: raw env "
          f"{statistics.median(raw):.0f} steps/s")
    for name in paths:
        ratio = statistics.median(r / w for r, w in zip(rates[name], raw))
        print(f"  {name}: collect {statistics.median(rates[name]):.0f} steps/s ({100 * ratio:.1f}% of raw)")
    if mirror is not None:
        speedup = statistics.median(m / t for m, t in zip(rates["numpy mirror"], rates["tensorflow"]))
        print(f"  numpy mirror / tensorflow: {speedup:.2f}x (median of per-round ratios)")
    env.close()


if __name__ == "__main__":
    run_program(main)
