"""Recurrent PPO on tasks with hidden velocities: tfpg against sb3-contrib's `RecurrentPPO`, same settings.

    python benchmarks/recurrent_ppo.py --sb3_python=/path/to/venv-with-sb3-contrib/bin/python \
        --tasks=cartpole,pendulum --seeds=0,1,2,3,4 --threads=1 --out=benchmarks/recurrent_ppo.jsonl

Tasks (the observation wrapper is tfpg's `tfpg/mask_observation.py`, loaded by path on both sides):
- `cartpole`: CartPole-v1 with the cart and pole velocities hidden (`keep=[0, 2]`);
- `pendulum`: Pendulum-v1 with the angular velocity hidden (`keep=[0, 1]`);
- `hopper`: Hopper-v5 with every velocity hidden (its 5 positions kept).

Both sides: an LSTM between the flat observations and [64, 64] tanh layers, one LSTM for the policy and
one for the value, PPO's clipped loss (ε 0.2), the task's settings below for both, constant learning rate,
normalised advantages, no observation normalisation or reward scaling (sb3-contrib's defaults), orthogonal
initialisation, an initial std of 1 (sb3's log_std_init=0; tfpg's initial_log_std is in units of the action
half-range, so −log 2 on Pendulum), synchronous vector envs. tfpg trains on whole sequences of each copy's
rollout (`sequence_length` = `rollout_steps`); sb3-contrib cuts them at episode starts and pads them.
Each (library, task, seed) runs in its own subprocess with `--threads` threads for its tensor ops; the
final deterministic policy is evaluated on `--eval_episodes` episodes, and the training steps/s is the
total env steps over the wall time of training (evaluation excluded). Each result is a JSON line.
"""

import argparse
import json
import os
import sys
import time

from paired_runs import launch, record

# argparse, not absl: the sb3-contrib side runs this file in a Python without tfpg or TensorFlow
PARSER = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
PARSER.add_argument("--tasks", default="cartpole,pendulum", help="Tasks to run (cartpole, pendulum, hopper).")
PARSER.add_argument("--seeds", default="0,1,2,3,4", help="Seeds.")
PARSER.add_argument("--libraries", default="tfpg,sb3", help="Libraries to run.")
PARSER.add_argument("--threads", type=int, default=1, help="Threads for each library's tensor ops.")
PARSER.add_argument("--eval_episodes", type=int, default=20, help="Episodes of the final evaluation.")
PARSER.add_argument("--sb3_python", help="Python with sb3-contrib, torch and gymnasium[mujoco] installed.")
PARSER.add_argument("--out", help="Append each result as a JSON line to this file.")
PARSER.add_argument("--run", help="Internal: run one 'library,task,seed'.")
FLAGS = PARSER.parse_args()

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# id, observation entries kept, env copies, steps per copy per batch, minibatch (steps), epochs, learning rate,
# gamma, GAE lambda, LSTM units, total env steps
TASKS = {
    "cartpole": dict(env="CartPole-v1", keep=[0, 2], envs=8, steps=128, minibatch=256, epochs=10,
                     learning_rate=1e-3, gamma=0.99, gae_lambda=0.95, units=64, total=150_000),
    "pendulum": dict(env="Pendulum-v1", keep=[0, 1], envs=8, steps=256, minibatch=512, epochs=10,
                     learning_rate=1e-3, gamma=0.9, gae_lambda=0.95, units=64, total=200_000),
    "hopper": dict(env="Hopper-v5", keep=[0, 1, 2, 3, 4], envs=8, steps=256, minibatch=512, epochs=10,
                   learning_rate=3e-4, gamma=0.99, gae_lambda=0.95, units=128, total=1_000_000),
}


def _masked(task):
    """A factory of the task's env with its hidden entries removed, by tfpg's own wrapper loaded by path."""
    import importlib.util

    import gymnasium as gym

    spec = importlib.util.spec_from_file_location("mask_observation",
                                                  os.path.join(ROOT, "tfpg", "mask_observation.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    settings = TASKS[task]
    return lambda: module.MaskObservation(gym.make(settings["env"]), keep=settings["keep"])


def _absolute_log_std_zero(envs):
    """tfpg's initial log-std (in units of the action half-range) that gives sb3's log_std_init=0, std 1."""
    import numpy as np

    space = envs.single_action_space
    if not hasattr(space, "high"):
        return 0.0
    return float(-np.log(np.mean((space.high - space.low) / 2.0)))


def _tfpg(task, seed):
    import gymnasium as gym

    import tfpg

    s = TASKS[task]
    envs = gym.vector.SyncVectorEnv([_masked(task)] * s["envs"], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    agent = tfpg.PPO(seed=seed, recurrent="lstm", recurrent_units=s["units"], rollout_steps=s["steps"],
                     sequence_length=s["steps"], minibatch_size=s["minibatch"], epochs=s["epochs"],
                     learning_rate=s["learning_rate"], learning_rate_schedule="constant", gamma=s["gamma"],
                     gae_lambda=s["gae_lambda"], normalize_observations=False, scale_rewards=False,
                     initial_log_std=_absolute_log_std_zero(envs), clip_range=0.2, value_coef=0.5,
                     entropy_coef=0.0, max_grad_norm=0.5)
    start = time.perf_counter()
    agent.fit(envs, s["total"], verbose=0)
    seconds = time.perf_counter() - start
    returns = agent.evaluate(_masked(task)(), episodes=FLAGS.eval_episodes)["returns"]
    return agent.total_steps, seconds, returns


def _sb3(task, seed):
    import numpy as np
    import torch
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    torch.set_num_threads(FLAGS.threads)
    s = TASKS[task]
    model = RecurrentPPO("MlpLstmPolicy", DummyVecEnv([_masked(task)] * s["envs"]), n_steps=s["steps"],
                         batch_size=s["minibatch"], n_epochs=s["epochs"], learning_rate=s["learning_rate"],
                         gamma=s["gamma"], gae_lambda=s["gae_lambda"], clip_range=0.2, vf_coef=0.5, ent_coef=0.0,
                         max_grad_norm=0.5, seed=seed, device="cpu", verbose=0,
                         policy_kwargs=dict(lstm_hidden_size=s["units"], net_arch=dict(pi=[64, 64], vf=[64, 64])))
    start = time.perf_counter()
    model.learn(s["total"])
    seconds = time.perf_counter() - start
    env = _masked(task)()
    returns = []
    for episode in range(FLAGS.eval_episodes):
        observation, _ = env.reset(seed=10_000 + seed + episode)
        state, start_flag, total, done = None, np.ones((1,), bool), 0.0, False
        while not done:
            action, state = model.predict(observation[None], state=state, episode_start=start_flag,
                                          deterministic=True)
            observation, reward, terminated, truncated, _ = env.step(action[0])
            start_flag = np.zeros((1,), bool)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return int(model.num_timesteps), seconds, returns


def _launch(library, task, seed):
    python = sys.executable if library == "tfpg" else FLAGS.sb3_python
    return launch(python, __file__, f"{library},{task},{seed}", FLAGS.threads, f"--eval_episodes={FLAGS.eval_episodes}")


def main():
    if FLAGS.run:
        library, task, seed = FLAGS.run.split(",")
        steps, seconds, returns = (_tfpg if library == "tfpg" else _sb3)(task, int(seed))
        print(json.dumps({"library": library, "task": task, "seed": int(seed), "threads": FLAGS.threads,
                          "steps": steps, "seconds": seconds, "steps_per_second": steps / seconds,
                          "mean_return": sum(returns) / len(returns), "returns": returns}))
        return
    if "sb3" in FLAGS.libraries.split(",") and not FLAGS.sb3_python:
        PARSER.error("--sb3_python is required to run sb3 (a Python with sb3-contrib installed).")
    for task in FLAGS.tasks.split(","):
        for seed in FLAGS.seeds.split(","):
            for library in FLAGS.libraries.split(","):  # both libraries back to back, so each pair shares the machine's state
                record(_launch(library, task, seed), FLAGS.out)


if __name__ == "__main__":
    main()
