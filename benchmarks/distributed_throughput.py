"""Training throughput of local collection against Ray workers, with the per-iteration breakdown.

    python benchmarks/distributed_throughput.py --env=Hopper-v5 --copies=2 --iterations=6 --rounds=3
    python benchmarks/distributed_throughput.py --env=ALE/Breakout-v5 --copies=4 --rollout_steps=128 \
        --iterations=4 --rounds=2

Each round trains one PPO agent per configuration (alternating, so drifts in the
machine's load hit all of them): `local` (one vector env of `copies` copies in
this process), `1 worker` (one Ray actor of `copies` copies) and `2 workers` (two
of `copies / 2`), all with the same batch. The first iteration of each agent is
a warm-up (tracing, worker start) and is not counted. Per iteration it reports
the medians of env-steps/s and of the parts: weight broadcast, the slowest
worker's stepping, the rest of the wait (weights fetched, transitions returned),
joining the parts, and the update. A local Ray instance with `--cpus` CPUs is
started by the script.
"""

import statistics
import time

import numpy as np
from absl import flags

import tfpg
from tfpg.launcher import run_program

flags.DEFINE_string("env", "Hopper-v5", "Gymnasium id.")
flags.DEFINE_integer("copies", 2, "Env copies in all (split evenly between 2 workers).")
flags.DEFINE_integer("rollout_steps", 2048, "Steps per copy per batch.")
flags.DEFINE_integer("iterations", 6, "Iterations per agent (the first is a warm-up).")
flags.DEFINE_integer("rounds", 3, "Rounds.")
flags.DEFINE_integer("cpus", 2, "CPUs of the local Ray instance.")
FLAGS = flags.FLAGS

PARTS = ("broadcast_seconds", "worker_seconds", "gather_seconds", "merge_seconds")


class _Record(tfpg.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.rows = []

    def on_epoch_end(self, epoch, logs=None):
        self.rows.append(dict(logs))


def _run(workers: int) -> list[dict]:
    agent = tfpg.PPO(seed=0, rollout_steps=FLAGS.rollout_steps)
    record = _Record()
    steps = FLAGS.iterations * FLAGS.rollout_steps * FLAGS.copies
    if workers == 0:
        agent.fit(FLAGS.env, steps, num_envs=FLAGS.copies, callbacks=[record], verbose=0)
    else:
        agent.fit(FLAGS.env, steps, num_workers=workers, envs_per_worker=FLAGS.copies // workers,
                  callbacks=[record], verbose=0)
    agent.close()
    return record.rows[1:]


def main(argv):
    del argv
    import ray
    ray.init(num_cpus=FLAGS.cpus, include_dashboard=False, logging_level="warning")
    configurations = {"local": 0, "1 worker": 1, "2 workers": 2}
    rows = {name: [] for name in configurations}
    for round_index in range(FLAGS.rounds):
        for name, workers in configurations.items():
            start = time.perf_counter()
            rows[name] += _run(workers)
            print(f"round {round_index} {name}: {time.perf_counter() - start:.0f} s", flush=True)
    batch = FLAGS.rollout_steps * FLAGS.copies
    print(f"\n{FLAGS.env}, {FLAGS.copies} copies, batch {batch} steps; medians over "
          f"{FLAGS.rounds} rounds x {FLAGS.iterations - 1} iterations")
    header = ["configuration", "env-steps/s", "iteration s", "collect s", *PARTS, "update s"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, records in rows.items():
        def median(key):
            values = [r[key] for r in records if key in r]
            return statistics.median(values) if values else float("nan")
        iteration = median("collect_seconds") + median("update_seconds")
        cells = [name, f"{batch / iteration:.0f}", f"{iteration:.3f}", f"{median('collect_seconds'):.3f}",
                 *(f"{median(part):.4f}" if not np.isnan(median(part)) else "" for part in PARTS),
                 f"{median('update_seconds'):.3f}"]
        print("| " + " | ".join(cells) + " |")
    ray.shutdown()


if __name__ == "__main__":
    run_program(main)
