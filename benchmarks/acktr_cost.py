"""Cost of an ACKTR update relative to the same A2C update, measured in one run.

    python benchmarks/acktr_cost.py --env=Hopper-v5 --batch=2500 --repeats=30

Both agents get the same networks and the same collected batch; the median
time of `train_on_batch` is compared (K-FAC statistics, inverse refreshes every
`kfac_inverse_every` updates and the preconditioning included).
"""

import statistics
import time

from absl import app, flags

import tfpg

flags.DEFINE_string("env", "Hopper-v5", "Gymnasium id.")
flags.DEFINE_integer("batch", 2500, "Samples per update.")
flags.DEFINE_integer("repeats", 30, "Timed repeats; medians are reported.")
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
    acktr = tfpg.ACKTR(seed=0, rollout_steps=FLAGS.batch)
    rollout = acktr.collect(FLAGS.env, FLAGS.batch)
    a2c = tfpg.A2C(seed=0, rollout_steps=FLAGS.batch)
    a2c.collect(FLAGS.env, FLAGS.batch)
    times = {"a2c": [], "acktr": []}
    for _ in range(3):  # interleaved, so both see the same machine load
        times["a2c"].append(_median_update_seconds(a2c, rollout, FLAGS.repeats))
        times["acktr"].append(_median_update_seconds(acktr, rollout, FLAGS.repeats))
    a2c_time, acktr_time = statistics.median(times["a2c"]), statistics.median(times["acktr"])
    print(f"update on {FLAGS.batch} samples of {FLAGS.env} (64-64): A2C {1e3 * a2c_time:.2f} ms, "
          f"ACKTR {1e3 * acktr_time:.2f} ms, ratio {acktr_time / a2c_time:.2f}x")


if __name__ == "__main__":
    app.run(main)
