"""Train A2C on CartPole in Python, evaluate it, save a checkpoint and export the policy.

    python examples/fit_cartpole.py --steps=200000 --out=/tmp/cartpole
"""

from absl import app, flags

import tfpg

flags.DEFINE_integer("steps", 200_000, "Environment steps to train for.")
flags.DEFINE_string("out", "/tmp/tfpg_cartpole", "Directory for the checkpoint and the exported policy.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    agent = tfpg.A2C(seed=0)
    history = agent.fit("CartPole-v1", steps=FLAGS.steps, num_envs=8, verbose=1)
    print("last training return:", history.history["episode_return"][-1])
    print("evaluation:", agent.evaluate("CartPole-v1", episodes=5))
    agent.save(f"{FLAGS.out}/checkpoints")
    print("policy exported to", agent.export(f"{FLAGS.out}/policy"))


if __name__ == "__main__":
    app.run(main)
