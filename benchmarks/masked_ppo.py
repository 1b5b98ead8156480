"""Masked PPO on an env with illegal actions: tfpg against sb3-contrib's `MaskablePPO`, same settings.

    python benchmarks/masked_ppo.py --sb3_python=/path/to/venv-with-sb3-contrib/bin/python \
        --seeds=0,1,2,3,4 --threads=1 --out=benchmarks/masked_ppo.jsonl

The env is `LegalMovesEnv` of `tests/mask_envs.py` (8 actions, a random half legal at each step, a legal action
a earning (a + 1)/8, an illegal one ending the episode with −1, 16 steps; the best policy earns about 14.4):
tfpg reads its mask from the Dict observation entry `action_mask`, sb3-contrib from the env's
`action_masks()`, so both see the same mask at every step. Both sides: 4 synchronous env copies × 256 steps
per batch, minibatches of 64, 4 epochs, Adam at a constant 3e-4, γ 0.99, GAE λ 0.95, clip 0.2, no entropy
bonus, value coefficient 0.5, gradient-norm clip 0.5, separate [64, 64] tanh networks with orthogonal
initialisation, no observation normalisation. sb3-contrib's `MultiInputPolicy` also reads the mask entry as
a feature; tfpg's encoders never see it. Each (library, seed) runs in its own subprocess with `--threads`
threads; the final deterministic policy is evaluated on `--eval_episodes` episodes, and the training steps/s
is the total env steps over the wall time of training. Each result is a JSON line.
"""

import argparse
import json
import os
import sys
import time

from paired_runs import launch, record

# argparse, not absl: the sb3-contrib side runs this file in a Python without tfpg or TensorFlow
PARSER = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
PARSER.add_argument("--seeds", default="0,1,2,3,4", help="Seeds.")
PARSER.add_argument("--libraries", default="tfpg,sb3", help="Libraries to run.")
PARSER.add_argument("--threads", type=int, default=1, help="Threads for each library's tensor ops.")
PARSER.add_argument("--steps", type=int, default=40_960, help="Env steps of each run.")
PARSER.add_argument("--eval_episodes", type=int, default=20, help="Episodes of the final evaluation.")
PARSER.add_argument("--sb3_python", help="Python with sb3-contrib, torch and gymnasium installed.")
PARSER.add_argument("--out", help="Append each result as a JSON line to this file.")
PARSER.add_argument("--run", help="Internal: run one 'library,seed'.")
FLAGS = PARSER.parse_args()

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
COPIES, STEPS, MINIBATCH, EPOCHS, LEARNING_RATE = 4, 256, 64, 4, 3e-4


def _tfpg(seed):
    import gymnasium as gym

    import tfpg
    from mask_envs import LegalMovesEnv

    envs = gym.vector.SyncVectorEnv([LegalMovesEnv] * COPIES, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    agent = tfpg.PPO(seed=seed, rollout_steps=STEPS, minibatch_size=MINIBATCH, epochs=EPOCHS,
                     learning_rate=LEARNING_RATE, learning_rate_schedule="constant", gamma=0.99, gae_lambda=0.95,
                     clip_range=0.2, entropy_coef=0.0, value_coef=0.5, max_grad_norm=0.5,
                     normalize_observations=False, scale_rewards=False)
    start = time.perf_counter()
    agent.fit(envs, FLAGS.steps, verbose=0)
    seconds = time.perf_counter() - start
    returns = agent.evaluate(LegalMovesEnv(), episodes=FLAGS.eval_episodes)["returns"]
    return agent.total_steps, seconds, returns, sum(env.illegal_actions for env in envs.envs)


def _sb3(seed):
    import torch
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    from mask_envs import LegalMovesEnv

    torch.set_num_threads(FLAGS.threads)
    envs = DummyVecEnv([LegalMovesEnv] * COPIES)
    model = MaskablePPO("MultiInputPolicy", envs, n_steps=STEPS, batch_size=MINIBATCH, n_epochs=EPOCHS,
                        learning_rate=LEARNING_RATE, gamma=0.99, gae_lambda=0.95, clip_range=0.2, ent_coef=0.0,
                        vf_coef=0.5, max_grad_norm=0.5, seed=seed, device="cpu", verbose=0,
                        policy_kwargs=dict(net_arch=dict(pi=[64, 64], vf=[64, 64])))
    start = time.perf_counter()
    model.learn(FLAGS.steps)
    seconds = time.perf_counter() - start
    env = LegalMovesEnv()
    returns = []
    for episode in range(FLAGS.eval_episodes):
        observation, _ = env.reset(seed=10_000 + seed + episode)
        total, done = 0.0, False
        while not done:
            action, _ = model.predict(observation, action_masks=env.action_masks(), deterministic=True)
            observation, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return int(model.num_timesteps), seconds, returns, sum(copy.illegal_actions for copy in envs.envs)


def _launch(library, seed):
    python = sys.executable if library == "tfpg" else FLAGS.sb3_python
    return launch(python, __file__, f"{library},{seed}", FLAGS.threads, f"--steps={FLAGS.steps}",
                  f"--eval_episodes={FLAGS.eval_episodes}")


def main():
    if FLAGS.run:
        library, seed = FLAGS.run.split(",")
        steps, seconds, returns, illegal = (_tfpg if library == "tfpg" else _sb3)(int(seed))
        print(json.dumps({"library": library, "seed": int(seed), "threads": FLAGS.threads, "steps": steps,
                          "seconds": seconds, "steps_per_second": steps / seconds, "illegal_actions": illegal,
                          "mean_return": sum(returns) / len(returns), "returns": returns}))
        return
    if "sb3" in FLAGS.libraries.split(",") and not FLAGS.sb3_python:
        PARSER.error("--sb3_python is required to run sb3 (a Python with sb3-contrib installed).")
    for seed in FLAGS.seeds.split(","):
        for library in FLAGS.libraries.split(","):  # back to back, so each pair shares the machine's state
            record(_launch(library, seed), FLAGS.out)


if __name__ == "__main__":
    main()
