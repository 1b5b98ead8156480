"""Learning benchmark: train an algorithm on several envs and seeds with the launcher's defaults.

    python benchmarks/returns.py --algo=ppo --envs=Hopper-v5,HalfCheetah-v5,Walker2d-v5 \
        --seeds=0,1,2 --steps=1000000 --parallel=2 --outdir=benchmarks/runs

Each run is `python -m tfpg.train` in its own log directory (one TensorFlow
thread per run so that parallel runs do not contend); the final policy is
evaluated deterministically over 10 episodes. Summarise with
`benchmarks/summarize.py`.
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
flags.DEFINE_integer("num_envs", 1, "Env copies per run.")
flags.DEFINE_integer("parallel", 2, "Runs at once.")
flags.DEFINE_string("outdir", "benchmarks/runs", "Parent directory of the runs.")
flags.DEFINE_multi_string("extra", [], "Extra flags passed to tfpg.train (e.g. --extra=--loss=adaptive_kl).")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    environment = {**os.environ, "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
    queue = list(itertools.product(FLAGS.envs, FLAGS.seeds))
    running = []
    while queue or running:
        while queue and len(running) < FLAGS.parallel:
            env, seed = queue.pop(0)
            logdir = os.path.join(FLAGS.outdir, FLAGS.algo, env, f"seed{seed}")
            command = [sys.executable, "-m", "tfpg.train", f"--algo={FLAGS.algo}", f"--env={env}",
                       f"--seed={seed}", f"--steps={FLAGS.steps}", f"--num_envs={FLAGS.num_envs}",
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
