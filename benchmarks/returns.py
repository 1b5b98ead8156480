"""Learning benchmark: train an algorithm on several envs and seeds with the launcher's defaults.

    python benchmarks/returns.py --algo=ppo --envs=Hopper-v5,HalfCheetah-v5,Walker2d-v5 \
        --seeds=0,1,2 --steps=1000000 --parallel=2 --outdir=benchmarks/runs

Each run is `python -m tfpg.train` in its own log directory (one TensorFlow
thread per run so that parallel runs do not contend); the final policy is
evaluated deterministically over 10 episodes. Summarise with
`benchmarks/summarize.py`. With `--tune` the runs are the trials of one
`python -m tfpg.sweep` (Ray Tune; `--parallel` is then the CPUs of its local Ray
instance, or of the cluster at `--ray_address`), in the same directory layout.
"""

import itertools
import os
import subprocess
import sys
import time

from absl import app, flags

flags.DEFINE_string("algo", "ppo", "Algorithm.")
flags.DEFINE_list("envs", ["Hopper-v5", "HalfCheetah-v5", "Walker2d-v5"], "Gymnasium ids.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds.")
flags.DEFINE_integer("steps", 1_000_000, "Env steps per run.")
flags.DEFINE_integer("num_envs", None, "Env copies per run (unset: the launcher's default for the algorithm).")
flags.DEFINE_integer("parallel", 2, "Runs at once.")
flags.DEFINE_string("outdir", "benchmarks/runs", "Parent directory of the runs.")
flags.DEFINE_multi_string("extra", [], "Extra flags passed to tfpg.train (e.g. --extra=--loss=adaptive_kl).")
flags.DEFINE_boolean("tune", False, "Run the seeds as Ray Tune trials of tfpg.sweep.")
flags.DEFINE_string("ray_address", None, "With --tune: the Ray cluster to run the trials on.")
FLAGS = flags.FLAGS


def _copies_flag() -> list[str]:
    return [] if FLAGS.num_envs is None else [f"--num_envs={FLAGS.num_envs}"]


def _sweep() -> int:
    command = [sys.executable, "-m", "tfpg.sweep", f"--algo={FLAGS.algo}", f"--envs={','.join(FLAGS.envs)}",
               f"--seeds={','.join(FLAGS.seeds)}", f"--steps={FLAGS.steps}",
               f"--outdir={os.path.join(FLAGS.outdir, FLAGS.algo)}",
               *(f"--extra={flag}" for flag in _copies_flag() + FLAGS.extra)]
    if FLAGS.ray_address:
        command.append(f"--ray_address={FLAGS.ray_address}")
    else:  # a local Ray instance has this machine's cores
        command.append(f"--cpus_per_trial={max(1.0, (os.cpu_count() or 1) / FLAGS.parallel):g}")
    return subprocess.call(command)


def main(argv):
    del argv
    if FLAGS.tune:
        sys.exit(_sweep())
    environment = {**os.environ, "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
    queue = list(itertools.product(FLAGS.envs, FLAGS.seeds))
    running = []
    while queue or running:
        while queue and len(running) < FLAGS.parallel:
            env, seed = queue.pop(0)
            logdir = os.path.join(FLAGS.outdir, FLAGS.algo, env, f"seed{seed}")
            command = [sys.executable, "-m", "tfpg.train", f"--algo={FLAGS.algo}", f"--env={env}",
                       f"--seed={seed}", f"--steps={FLAGS.steps}", *_copies_flag(),
                       f"--logdir={logdir}", "--verbose=0", *FLAGS.extra]
            if os.path.exists(os.path.join(logdir, "checkpoints")):
                command.append("--resume")
            os.makedirs(os.path.dirname(logdir), exist_ok=True)
            log = open(logdir + ".log", "a")
            running.append((subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment),
                            env, seed, time.time()))
            print(f"started {env} seed {seed}", flush=True)
        time.sleep(5)
        for item in list(running):
            process, env, seed, start = item
            if process.poll() is not None:
                running.remove(item)
                print(f"finished {env} seed {seed}: exit {process.returncode} after "
                      f"{(time.time() - start) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    app.run(main)
