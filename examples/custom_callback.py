"""Write a callback: print a line every few iterations and stop once the agent is good enough.

    python examples/custom_callback.py --steps=300000 --target=475
"""

from absl import app, flags

import tfpg

flags.DEFINE_integer("steps", 300_000, "Maximum environment steps.")
flags.DEFINE_float("target", 475.0, "Stop when the mean return of the last 100 episodes reaches this.")
FLAGS = flags.FLAGS


class ReportAndStop(tfpg.callbacks.Callback):
    """Prints progress every `every` iterations and stops training at a return target."""

    def __init__(self, target: float, every: int = 200):
        super().__init__()
        self.target = target
        self.every = every

    def on_epoch_end(self, epoch, logs=None):
        if epoch % self.every == 0:
            print(f"iteration {epoch}: {logs['total_steps']} steps, return {logs['episode_return']:.1f}, "
                  f"entropy {logs['entropy']:.3f}")
        if logs["episode_return"] >= self.target:
            print(f"target {self.target} reached at {logs['total_steps']} steps")
            self.agent.stop_training = True


def main(argv):
    del argv
    agent = tfpg.A2C(seed=0)
    history = agent.fit("CartPole-v1", steps=FLAGS.steps, num_envs=8, verbose=0,
                        callbacks=[ReportAndStop(FLAGS.target)])
    print(f"stopped after {len(history.history['total_steps'])} iterations")


if __name__ == "__main__":
    app.run(main)
