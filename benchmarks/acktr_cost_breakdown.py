"""Where an ACKTR update's time goes: the compiled update with parts of it switched off, against A2C's.

    TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 python benchmarks/acktr_cost_breakdown.py

Times the compiled update itself (no `train_on_batch` bookkeeping) on one
2500-sample Hopper batch, 64-64 networks, blocks of `--block` calls, interleaved
`--rounds` times; prints medians and each variant's extra time over A2C. The
switched-off variants are measurements only, not configurations: without the
factor statistics the factors stay at their initial identity, and without the
exact-KL check no step is shrunk.
"""

import functools
import statistics
import time

import tfpg  # before TensorFlow: tfpg loads it with its start-up notices held back
import tensorflow as tf
from absl import flags

from tfpg.update import BATCH_FIELDS
from tfpg.launcher import run_program

flags.DEFINE_string("env", "Hopper-v5", "Gymnasium id.")
flags.DEFINE_integer("batch", 2500, "Samples per update.")
flags.DEFINE_integer("block", 60, "Calls per timed block.")
flags.DEFINE_integer("rounds", 7, "Interleaved rounds.")
FLAGS = flags.FLAGS


def _switch_off(agent, statistics_pass: bool, kl_check: bool):
    """Switches parts of a built agent's update off, before its update is first traced."""
    if statistics_pass:
        agent._update = functools.partial(agent._update, gather_statistics=False)
    if kl_check:
        apply_gradients = agent.kfac.apply_gradients
        agent.kfac.apply_gradients = lambda gradients, kl_fn=None: apply_gradients(gradients)
    return agent


VARIANTS = {
    "ACKTR": (False, False),
    "without the factor statistics": (True, False),
    "without the exact-KL check": (False, True),
    "without both": (True, True),
}


def _block_seconds(function, batch):
    start = time.perf_counter()
    for _ in range(FLAGS.block):
        function(batch)
    return (time.perf_counter() - start) / FLAGS.block


def main(argv):
    del argv
    tf.get_logger().setLevel("ERROR")
    a2c = tfpg.A2C(seed=0, rollout_steps=FLAGS.batch)
    rollout = a2c.collect(FLAGS.env, FLAGS.batch)
    agents = {"A2C": a2c}
    for name, switches in VARIANTS.items():
        agent = tfpg.ACKTR(seed=0, rollout_steps=FLAGS.batch)
        agent.collect(FLAGS.env, FLAGS.batch)
        agents[name] = _switch_off(agent, *switches)
    flat = {name: rollout.flat(name) for name in BATCH_FIELDS}
    batch = {"observations": a2c._as_model_input(flat["observations"]),
             **{name: tf.convert_to_tensor(flat[name]) for name in BATCH_FIELDS[1:]}}
    for agent in agents.values():
        agent._train_step(batch)
    times = {name: [] for name in agents}
    for _ in range(FLAGS.rounds):
        for name, agent in agents.items():
            times[name].append(_block_seconds(agent._train_step, batch))
    base = statistics.median(times["A2C"])
    print(f"compiled update on {FLAGS.batch} samples of {FLAGS.env} (64-64): A2C {1e3 * base:.2f} ms")
    for name in list(agents)[1:]:
        median = statistics.median(times[name])
        print(f"{name}: {1e3 * median:.2f} ms, {median / base:.2f}x A2C, +{1e3 * (median - base):.2f} ms")


if __name__ == "__main__":
    run_program(main)
