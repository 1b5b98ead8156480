"""Cost of an ACKTR update relative to the same A2C update, measured in one run.

    python benchmarks/acktr_cost.py --env=Hopper-v5 --batch=2500 --block=60 --repeats=5

Both agents get the same networks and the same collected batch. Each timing is
the mean over a block of `--block` consecutive `train_on_batch` calls, so work
done on every k-th update only (inverse refreshes every `kfac_inverse_every`
updates, statistics every `kfac_statistics_every`) is counted at its amortised
share; the median block is compared, for each ACKTR variant given as
comma-separated numeric config overrides ("" is the defaults):

    python benchmarks/acktr_cost.py --variant= --variant=kfac_statistics_every=2
"""

import os
import statistics
import time

import tfpg  # before TensorFlow: tfpg loads it with its start-up notices held back
import tensorflow as tf
from absl import flags

from tfpg.launcher import run_program

flags.DEFINE_string("env", "Hopper-v5", "Gymnasium id.")
flags.DEFINE_integer("batch", 2500, "Samples per update.")
flags.DEFINE_integer("repeats", 10, "Timed blocks; medians are reported.")
flags.DEFINE_integer("rounds", 5, "Interleaved rounds over all agents; per-round ratios are reported too.")
flags.DEFINE_integer("block", 20, "Updates per timed block (a multiple of every refresh period timed).")
flags.DEFINE_multi_string("variant", ["", "kfac_statistics_every=2", "kfac_statistics_samples=256"],
                          "ACKTR config overrides to time, e.g. kfac_statistics_every=2 ('': the defaults).")
FLAGS = flags.FLAGS


def _median_update_seconds(agent, rollout, repeats, block):
    agent.train_on_batch(rollout)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(block):
            agent.train_on_batch(rollout)
        times.append((time.perf_counter() - start) / block)
    return statistics.median(times)


def _overrides(variant):
    pairs = [item.split("=", 1) for item in variant.split(",") if item]
    return {key: int(value) if value.lstrip("-").isdigit() else float(value) for key, value in pairs}


def main(argv):
    del argv
    tf.get_logger().setLevel("ERROR")  # several agents' tf.functions trace once each; not a retracing problem
    a2c = tfpg.A2C(seed=0, rollout_steps=FLAGS.batch)
    rollout = a2c.collect(FLAGS.env, FLAGS.batch)
    agents = {"a2c": a2c}
    for variant in FLAGS.variant:
        agents[variant] = tfpg.ACKTR(seed=0, rollout_steps=FLAGS.batch, **_overrides(variant))
        agents[variant].collect(FLAGS.env, FLAGS.batch)
    times = {name: [] for name in agents}
    for _ in range(FLAGS.rounds):  # interleaved, so all see the same machine load
        for name, agent in agents.items():
            times[name].append(_median_update_seconds(agent, rollout, FLAGS.repeats, FLAGS.block))
    a2c_times = times.pop("a2c")
    a2c_time = statistics.median(a2c_times)
    threads = os.environ.get("TF_NUM_INTRAOP_THREADS", "default")
    print(f"update on {FLAGS.batch} samples of {FLAGS.env} (64-64), {threads} intra-op threads: "
          f"A2C {1e3 * a2c_time:.2f} ms")
    for variant, values in times.items():
        acktr_time = statistics.median(values)
        rounds = sorted(value / a2c for value, a2c in zip(values, a2c_times))
        print(f"ACKTR ({variant or 'defaults'}): {1e3 * acktr_time:.2f} ms, ratio {acktr_time / a2c_time:.2f}x "
              f"(per round {rounds[0]:.2f}-{rounds[-1]:.2f}x)")


if __name__ == "__main__":
    run_program(main)
