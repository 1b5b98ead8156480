"""PPO training frames/s on Atari: tfpg against Stable-Baselines3's `CnnPolicy`, same settings, same run.

    python benchmarks/atari_throughput.py --sb3_python=/path/to/venv-with-sb3/bin/python --rounds=3

Both sides train PPO on the same Gymnasium env stack, tfpg's `tfpg/atari.py` (`ALE/Breakout-v5` with
frame skip 1, then AtariPreprocessing with 30 no-op starts, frame skip 4, 84×84 grayscale, and 4
stacked frames), with
the PPO Atari settings: 8 envs × 128 steps, 4 epochs of 4 minibatches (256), learning rate 2.5e-4,
clip 0.1, entropy 0.01, value coefficient 0.5, gradient clip 0.5, γ 0.99, λ 0.95, synchronous envs.
Each round runs one subprocess per library (alternating which goes first) that trains
`--iterations` iterations after one warm-up iteration and reports frames/s (4 frames per agent
step); the summary gives each library's median and the ratio of medians. Both use
`--threads` threads (TensorFlow intra/inter-op; torch.set_num_threads).
"""

import json
import os
import statistics
import subprocess
import sys
import time

from absl import app, flags

from tfpg.launcher import run_program

flags.DEFINE_string("env", "ALE/Breakout-v5", "Atari id.")
flags.DEFINE_integer("iterations", 4, "Timed iterations (of 8 × 128 steps) per library per round.")
flags.DEFINE_integer("rounds", 3, "Rounds; each runs both libraries once.")
flags.DEFINE_integer("threads", 2, "Threads for each library's tensor ops.")
flags.DEFINE_string("sb3_python", None, "Python with stable-baselines3, torch and ale-py installed.")
flags.DEFINE_string("library", None, "Internal: run one library's measurement (tfpg or sb3).")
FLAGS = flags.FLAGS

ENVS, STEPS, FRAME_SKIP = 8, 128, 4


def _make_env(env_id):
    """tfpg's own Atari env stack (`tfpg/atari.py`), loaded by path: the SB3 Python has no TensorFlow."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tfpg", "atari.py")
    spec = importlib.util.spec_from_file_location("tfpg_atari", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_atari(env_id)


def _measure_tfpg():
    import tfpg
    from tfpg.envs import make_vector_env

    agent = tfpg.PPO(seed=0, rollout_steps=STEPS, epochs=4, minibatch_size=ENVS * STEPS // 4, learning_rate=2.5e-4,
                     learning_rate_decay_steps=10_000_000, clip_range=0.1, entropy_coef=0.01, value_coef=0.5,
                     max_grad_norm=0.5, gamma=0.99, gae_lambda=0.95)
    env = make_vector_env(FLAGS.env, num_envs=ENVS)
    agent.fit(env, ENVS * STEPS, verbose=0)  # warm-up: builds and traces
    start = time.perf_counter()
    agent.fit(env, FLAGS.iterations * ENVS * STEPS, verbose=0)
    return FLAGS.iterations * ENVS * STEPS * FRAME_SKIP / (time.perf_counter() - start)


def _measure_sb3():
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    torch.set_num_threads(FLAGS.threads)
    env = DummyVecEnv([lambda: _make_env(FLAGS.env) for _ in range(ENVS)])
    model = PPO("CnnPolicy", env, n_steps=STEPS, batch_size=ENVS * STEPS // 4, n_epochs=4, learning_rate=2.5e-4,
                clip_range=0.1, ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5, gamma=0.99, gae_lambda=0.95,
                seed=0, device="cpu", verbose=0)
    model.learn(ENVS * STEPS)  # warm-up
    start = time.perf_counter()
    model.learn(FLAGS.iterations * ENVS * STEPS, reset_num_timesteps=False)
    return FLAGS.iterations * ENVS * STEPS * FRAME_SKIP / (time.perf_counter() - start)


def _run(library):
    python = sys.executable if library == "tfpg" else FLAGS.sb3_python
    environment = {**os.environ, "TF_NUM_INTRAOP_THREADS": str(FLAGS.threads),
                   "TF_NUM_INTEROP_THREADS": str(FLAGS.threads), "OMP_NUM_THREADS": str(FLAGS.threads)}
    command = [python, os.path.abspath(__file__), f"--library={library}", f"--env={FLAGS.env}",
               f"--iterations={FLAGS.iterations}", f"--threads={FLAGS.threads}"]
    result = subprocess.run(command, capture_output=True, text=True, env=environment,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if result.returncode != 0:
        raise RuntimeError(f"{library} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])["frames_per_second"]


def main(argv):
    del argv
    if FLAGS.library:
        measure = _measure_tfpg if FLAGS.library == "tfpg" else _measure_sb3
        print(json.dumps({"frames_per_second": measure()}))
        return
    if not FLAGS.sb3_python:
        raise app.UsageError("--sb3_python is required (a Python with stable-baselines3 installed).")
    rates = {"tfpg": [], "sb3": []}
    for round_index in range(FLAGS.rounds):
        order = ["tfpg", "sb3"] if round_index % 2 == 0 else ["sb3", "tfpg"]
        for library in order:
            rates[library].append(_run(library))
            print(f"round {round_index}: {library} {rates[library][-1]:.0f} frames/s", flush=True)
    tfpg_median, sb3_median = statistics.median(rates["tfpg"]), statistics.median(rates["sb3"])
    print("| library | frames/s per round | median |\n|---|---|---|")
    for library, median in (("tfpg", tfpg_median), ("sb3", sb3_median)):
        print(f"| {library} | {', '.join(f'{r:.0f}' for r in rates[library])} | {median:.0f} |")
    print(f"ratio of medians tfpg / sb3: {tfpg_median / sb3_median:.2f}")


if __name__ == "__main__":
    run_program(main)
