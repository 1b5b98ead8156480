"""Cost of the natural-gradient machinery on a real batch, measured in one run.

    python benchmarks/natural_gradient_cost.py --env=Hopper-v5 --batch=2048 --repeats=30

Prints the median time of one whole TRPO update (policy gradient, 10 CG
iterations, line search and value fit, one tf.function call), and of one
Fisher-vector product against one plain gradient of the surrogate on the same
batch with the same 64-64 policy, each compiled on its own.
"""

import statistics
import time

import tfpg  # before TensorFlow: tfpg loads it with its start-up notices held back
import tensorflow as tf
import tensorflow_probability as tfp
from absl import flags

from tfpg.losses import masked_mean
from tfpg.optimizers import fisher_vector_product, flat_gradient
from tfpg.launcher import run_program

flags.DEFINE_string("env", "Hopper-v5", "Gymnasium id.")
flags.DEFINE_integer("batch", 2048, "Samples per update.")
flags.DEFINE_integer("repeats", 30, "Timed repeats; medians are reported.")
FLAGS = flags.FLAGS


def _median_seconds(function, repeats):
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv):
    del argv
    agent = tfpg.TRPO(seed=0, rollout_steps=FLAGS.batch, cg_iterations=10, cg_residual_tolerance=0.0)
    rollout = agent.collect(FLAGS.env, FLAGS.batch)
    update = _median_seconds(lambda: agent.train_on_batch(rollout), FLAGS.repeats)
    observations = tf.constant(rollout.flat("observations"))
    actions = tf.constant(rollout.flat("actions"))
    old_log_probs = tf.constant(rollout.flat("log_probs"))
    advantages = tf.constant(rollout.flat("advantages"))
    variables = agent.policy.trainable_variables
    agent._snapshot_policy()

    @tf.function
    def gradient():
        with tf.GradientTape() as tape:
            ratio = tf.exp(agent.policy(observations).log_prob(actions) - old_log_probs)
            surrogate = masked_mean(ratio * advantages)
        return flat_gradient(tape, surrogate, variables)

    vector = tf.random.normal(gradient().shape)

    @tf.function
    def product():
        old = agent.old_policy(observations)
        kl = lambda: masked_mean(tfp.distributions.kl_divergence(old, agent.policy(observations)))  # noqa: E731
        return fisher_vector_product(kl, variables, vector, 0.1)

    gradient_time = _median_seconds(lambda: gradient().numpy(), FLAGS.repeats * 3)
    product_time = _median_seconds(lambda: product().numpy(), FLAGS.repeats * 3)
    print(f"TRPO update on {FLAGS.batch} samples of {FLAGS.env} (64-64, 10 CG iterations, value fit included): "
          f"{1e3 * update:.1f} ms")
    print(f"plain gradient {1e3 * gradient_time:.2f} ms, Fisher-vector product {1e3 * product_time:.2f} ms: "
          f"ratio {product_time / gradient_time:.2f}x")


if __name__ == "__main__":
    run_program(main)
