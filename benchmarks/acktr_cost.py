"""Cost of an ACKTR update relative to the same A2C update, measured in one run.

    python benchmarks/acktr_cost.py --env=Hopper-v5 --batch=2500 --repeats=30

Both agents get the same networks and the same collected batch; the median
time of `train_on_batch` is compared (K-FAC statistics, inverse refreshes every
`kfac_inverse_every` updates and the preconditioning included), for each
value of `kfac_statistics_samples` given.
"""

import statistics
import time

import tensorflow as tf
from absl import app, flags

import tfpg

flags.DEFINE_string("env", "Hopper-v5", "Gymnasium id.")
flags.DEFINE_integer("batch", 2500, "Samples per update.")
flags.DEFINE_integer("repeats", 30, "Timed repeats; medians are reported.")
flags.DEFINE_list("statistics_samples", ["0", "512", "256"],
                  "ACKTR kfac_statistics_samples values to time (0, the default: every sample).")
FLAGS = flags.FLAGS


def _median_update_seconds(agent, rollout, repeats):
    agent.train_on_batch(rollout)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        agent.train_on_batch(rollout)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv):
    del argv
    tf.get_logger().setLevel("ERROR")  # several agents' tf.functions trace once each; not a retracing problem
    a2c = tfpg.A2C(seed=0, rollout_steps=FLAGS.batch)
    rollout = a2c.collect(FLAGS.env, FLAGS.batch)
    agents = {"a2c": a2c}
    for samples in FLAGS.statistics_samples:
        agents[samples] = tfpg.ACKTR(seed=0, rollout_steps=FLAGS.batch, kfac_statistics_samples=int(samples))
        agents[samples].collect(FLAGS.env, FLAGS.batch)
    times = {name: [] for name in agents}
    for _ in range(5):  # interleaved, so all see the same machine load
        for name, agent in agents.items():
            times[name].append(_median_update_seconds(agent, rollout, FLAGS.repeats))
    a2c_time = statistics.median(times.pop("a2c"))
    print(f"update on {FLAGS.batch} samples of {FLAGS.env} (64-64): A2C {1e3 * a2c_time:.2f} ms")
    for samples, values in times.items():
        acktr_time = statistics.median(values)
        print(f"ACKTR, kfac_statistics_samples={samples}: {1e3 * acktr_time:.2f} ms, "
              f"ratio {acktr_time / a2c_time:.2f}x")


if __name__ == "__main__":
    app.run(main)
