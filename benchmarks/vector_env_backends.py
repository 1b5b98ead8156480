"""Env-steps/s of the vector env backends: raw stepping and PPO training, 1 and 8 copies, in one run.

    python benchmarks/vector_env_backends.py --env=Hopper-v5 --copies=1,8 --rounds=3

Backends: Gymnasium's synchronous vector env, its asynchronous one (a
subprocess per copy), and EnvPool. Raw: random actions drawn beforehand, no
policy. Training: `tfpg.PPO` with its defaults (2048 steps per copy per batch)
through `fit`, the first iteration (tracing) not counted. Rounds alternate the
backends; medians are reported.
"""

import statistics
import time

import numpy as np
from absl import flags

import tfpg
from tfpg.envs import make_vector_env
from tfpg.launcher import run_program

flags.DEFINE_string("env", "Hopper-v5", "Gymnasium id.")
flags.DEFINE_list("copies", ["1", "8"], "Env copies.")
flags.DEFINE_integer("raw_steps", 20000, "Env steps per raw measurement.")
flags.DEFINE_integer("iterations", 3, "PPO iterations per measurement (the first is not counted).")
flags.DEFINE_integer("rounds", 3, "Rounds.")
FLAGS = flags.FLAGS

BACKENDS = {"gymnasium sync": ("gymnasium", False), "gymnasium async": ("gymnasium", True),
            "envpool": ("envpool", False)}


def _raw(backend: str, asynchronous: bool, copies: int) -> float:
    env = make_vector_env(FLAGS.env, copies, asynchronous=asynchronous, backend=backend)
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(64)]
    steps = max(1, FLAGS.raw_steps // copies)
    start = time.perf_counter()
    for index in range(steps):
        env.step(actions[index % 64])
    rate = steps * copies / (time.perf_counter() - start)
    env.close()
    return rate


class _Rates(tfpg.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.rates = []

    def on_epoch_end(self, epoch, logs=None):
        self.rates.append(logs["steps_per_second"])


def _training(backend: str, asynchronous: bool, copies: int) -> float:
    agent = tfpg.PPO(seed=0)
    rates = _Rates()
    agent.fit(FLAGS.env, FLAGS.iterations * agent.config.rollout_steps * copies, num_envs=copies,
              asynchronous=asynchronous, vector_env=backend, callbacks=[rates], verbose=0)
    agent.close()
    return statistics.median(rates.rates[1:])


def main(argv):
    del argv
    copies_list = [int(c) for c in FLAGS.copies]
    raw = {(name, c): [] for name in BACKENDS for c in copies_list}
    training = {(name, c): [] for name in BACKENDS for c in copies_list}
    for round_index in range(FLAGS.rounds):
        for copies in copies_list:
            for name, (backend, asynchronous) in BACKENDS.items():
                raw[name, copies].append(_raw(backend, asynchronous, copies))
                training[name, copies].append(_training(backend, asynchronous, copies))
                print(f"round {round_index} {name} x{copies}: raw {raw[name, copies][-1]:.0f}, "
                      f"PPO {training[name, copies][-1]:.0f} steps/s", flush=True)
    print(f"\n{FLAGS.env}: medians of {FLAGS.rounds} rounds (env-steps/s)")
    print("| backend | copies | raw | PPO training | training / raw |")
    print("|---|---|---|---|---|")
    for copies in copies_list:
        for name in BACKENDS:
            r, t = np.median(raw[name, copies]), np.median(training[name, copies])
            print(f"| {name} | {copies} | {r:.0f} | {t:.0f} | {t / r:.0%} |")


if __name__ == "__main__":
    run_program(main)
