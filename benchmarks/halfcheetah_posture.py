"""How trained HalfCheetah policies run: upright or on their back.

    python benchmarks/halfcheetah_posture.py --runs=<logdir>,<logdir> --episodes=3

For each run's final checkpoint, plays deterministic episodes of
HalfCheetah-v5 and reports the return and the share of steps the torso spends
upside down: the root's pitch θ (qpos[2]) with cos θ < 0, i.e. rotated more than
90° from upright.
"""

import json
import os

import gymnasium as gym
import numpy as np
from absl import flags

import tfpg
from tfpg.launcher import run_program

flags.DEFINE_list("runs", [], "Run folders of tfpg.train on HalfCheetah-v5.")
flags.DEFINE_integer("episodes", 3, "Deterministic episodes per run.")
flags.DEFINE_string("json", None, "Append one JSON line per run to this file.")
FLAGS = flags.FLAGS


def posture(run: str, episodes: int) -> dict:
    """Mean return and share of upside-down steps of a run's final policy."""
    agent = tfpg.load(os.path.join(run, "checkpoints"))
    env = gym.make("HalfCheetah-v5")
    returns, upside_down, steps = [], 0, 0
    for episode in range(episodes):
        observation, _ = env.reset(seed=1000 + episode)
        total, done = 0.0, False
        while not done:
            observation, reward, terminated, truncated, _ = env.step(agent.predict(observation))
            total += float(reward)
            upside_down += int(np.cos(env.unwrapped.data.qpos[2]) < 0)
            steps += 1
            done = terminated or truncated
        returns.append(total)
    env.close()
    return {"run": run, "mean_return": float(np.mean(returns)), "upside_down_share": upside_down / steps}


def main(argv):
    del argv
    for run in FLAGS.runs:
        result = posture(run, FLAGS.episodes)
        print(f"{run}: return {result['mean_return']:.0f}, upside down {100 * result['upside_down_share']:.0f}% "
              f"of steps")
        if FLAGS.json:
            with open(FLAGS.json, "a") as file:
                file.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    run_program(main)
