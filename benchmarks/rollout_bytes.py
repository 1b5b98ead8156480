"""Bytes a rollout stores per env step, by field, for image observations (kept uint8) and a MuJoCo task.

    python benchmarks/rollout_bytes.py

The image env is the tests' BrightSideEnv at Atari's preprocessed shape (4 stacked 84×84 grayscale
frames, channels first); Hopper-v5 for comparison. Counts the arrays of a real `Rollout`.
"""

import dataclasses
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

import tfpg  # noqa: E402
from image_envs import BrightSideEnv  # noqa: E402


def main():
    cases = [("BrightSide 4×84×84 uint8", BrightSideEnv(side=84, channels_first=True, channels=4)),
             ("Hopper-v5", "Hopper-v5")]
    print("| observations | observation bytes/step | all rollout arrays, bytes/step | as float32 observations |")
    print("|---|---|---|---|")
    for name, env in cases:
        agent = tfpg.A2C(seed=0)
        rollout = agent.collect(env, 256)
        arrays = {f.name: getattr(rollout, f.name) for f in dataclasses.fields(rollout)
                  if isinstance(getattr(rollout, f.name), np.ndarray)}
        per_step = {k: v.nbytes / rollout.num_steps for k, v in arrays.items()}
        observation = per_step["observations"]
        as_float = observation * 4 / rollout.observations.itemsize
        print(f"| {name} ({rollout.observations.dtype}) | {observation:.0f} | {sum(per_step.values()):.0f} | "
              f"{as_float:.0f} |")


if __name__ == "__main__":
    main()
