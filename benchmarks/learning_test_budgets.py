"""Where the learning tests' runs reach their thresholds: the budgets of `tests/test_learning.py`.

    python benchmarks/learning_test_budgets.py --runs=a2c,ppo,trpo --chunks=20

Each run is one test's agent and env (same seed), trained in `--chunks` chunks of its chunk size; after each
chunk its deterministic policy is evaluated on 10 episodes as the test does. A chunked run starts new episodes
at every chunk, so its curve is close to, not equal to, one `fit` of the same total; the tests' final budgets
were checked with one `fit` each (`--single=STEPS`).
"""

import time

from absl import app, flags

import tfpg

# name -> (agent factory, env id, fit keyword arguments, chunk size in env steps)
RUNS = {
    "a2c": (lambda: tfpg.A2C(seed=0), "CartPole-v1", dict(num_envs=8), 10_000),
    "reinforce": (lambda: tfpg.REINFORCE(seed=0, rollout_steps=500), "CartPole-v1", dict(num_envs=8), 20_000),
    "ppo": (lambda: tfpg.PPO(seed=0), "CartPole-v1", {}, 4 * 2048),
    "ppo_adaptive_kl": (lambda: tfpg.PPO(seed=0, loss="adaptive_kl"), "CartPole-v1", {}, 4 * 2048),
    "pendulum": (lambda: tfpg.PPO(seed=0, gamma=0.9, learning_rate=1e-3, rollout_steps=1024), "Pendulum-v1",
                 dict(num_envs=4), 5 * 4 * 1024),
    "trpo": (lambda: tfpg.TRPO(seed=0), "CartPole-v1", {}, 8 * 1024),
    "npg": (lambda: tfpg.NPG(seed=0), "CartPole-v1", {}, 8 * 1024),
    "acktr_seed0": (lambda: tfpg.ACKTR(seed=0, rollout_steps=256), "CartPole-v1", {}, 40 * 256),
    "acktr_seed1": (lambda: tfpg.ACKTR(seed=1, rollout_steps=256), "CartPole-v1", {}, 40 * 256),
}

flags.DEFINE_list("runs", sorted(RUNS), "Runs to train.")
flags.DEFINE_integer("chunks", 10, "Chunks per run.", lower_bound=1)
flags.DEFINE_integer("single", 0, "Instead of chunks: one fit of this many env steps per run.", lower_bound=0)
FLAGS = flags.FLAGS


def main(_):
    for name in FLAGS.runs:
        make, env, fit_options, chunk = RUNS[name]
        agent, start = make(), time.perf_counter()
        for steps in ([FLAGS.single] if FLAGS.single else [chunk] * FLAGS.chunks):
            agent.fit(env, steps=steps, verbose=0, **fit_options)
            mean_return = agent.evaluate(env, episodes=10)["mean_return"]
            print(f"{name} {agent.total_steps} {mean_return:.1f} {time.perf_counter() - start:.0f}s", flush=True)


if __name__ == "__main__":
    app.run(main)
