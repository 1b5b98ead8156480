"""How well K-FAC's quadratic model predicts the KL of ACKTR's policy steps, and where it falls short.

    python benchmarks/kfac_fidelity.py --env=Hopper-v5 --updates=120 --out=benchmarks/kfac_fidelity_hopper.json

Trains a default ACKTR agent and, for every update, takes the policy step before
the exact-KL shrink, Δθ = (θ_after − θ_before) / shrink, and compares:

- `predicted`: K-FAC's ½η²ΔᵀF̂Δ (the `kfac_quadratic_kl` the optimizer logs);
- `exact_kl`: the mean KL(π_before ‖ π_before+Δθ) on the batch (`kfac_step_kl`);
- `exact_quadratic`: ½ΔθᵀFΔθ with the exact Fisher F of the batch (Fisher-vector
  products), so exact_kl / exact_quadratic is the KL's departure from quadratic;
- `block_diagonal`: Σ_b ½Δθ_bᵀF_bbΔθ_b over the blocks K-FAC treats separately
  (each Dense layer's kernel and bias, the log-std), so exact_quadratic /
  block_diagonal is what the cross-block terms add, and block_diagonal / predicted
  what the Kronecker factors (and their running averages) miss within the blocks;
- `log_std_block`: the log-std block's ½Δᵀ F Δ alone (F = 2I for a state-independent log-std).

Prints the medians and writes every update's figures to `--out`.
"""

from __future__ import annotations

import json
import os

import numpy as np
from absl import flags

from tfpg.launcher import run_program

flags.DEFINE_string("env", "Hopper-v5", "Gymnasium id.")
flags.DEFINE_integer("updates", 120, "ACKTR updates to train and measure.")
flags.DEFINE_integer("seed", 0, "Seed.")
flags.DEFINE_string("out", None, "JSON file for the per-update figures.")
flags.DEFINE_multi_string("hyperparameter", [], "name=value overrides of the ACKTR defaults (floats or ints).")
FLAGS = flags.FLAGS


def _value(text: str):
    return int(text) if text.lstrip("-").isdigit() else float(text)


def measure(agent, rollout, tf, tfp, fisher_vector_product) -> dict:
    """Trains on `rollout` and returns the step's predicted and exact KL figures."""
    variables = agent._policy_variables
    before = [v.numpy() for v in variables]
    observations = agent._as_model_input(rollout.flat("observations"))
    used = rollout.flat("mask") > 0
    observations = tf.nest.map_structure(lambda x: tf.boolean_mask(x, used), observations)
    old_distribution = agent.policy(observations)
    old = tfp.distributions.Independent(
        tfp.distributions.Normal(tf.stop_gradient(old_distribution.distribution.loc),
                                 tf.stop_gradient(old_distribution.distribution.scale)), 1)
    metrics = agent.train_on_batch(rollout)
    shrink = metrics["kfac_shrink"]
    step = [(v.numpy() - b) / shrink for v, b in zip(variables, before)]
    for variable, value in zip(variables, before):
        variable.assign(value)

    def kl():
        return tf.reduce_mean(tfp.distributions.kl_divergence(old, agent.policy(observations)))

    def half_quadratic(parts):
        vector = tf.concat([tf.reshape(tf.constant(p, tf.float32), [-1]) for p in parts], 0)
        return 0.5 * float(tf.reduce_sum(vector * fisher_vector_product(kl, variables, vector)))

    exact_quadratic = half_quadratic(step)
    blocks, kfac_blocks = {}, {}
    by_id = {id(v): s for v, s in zip(variables, step)}
    for layer, a_factor, g_factor in zip(agent.kfac.layers, agent.kfac.a_factors, agent.kfac.g_factors):
        members = {id(layer.kernel), id(layer.bias)}
        blocks[layer.name] = half_quadratic([s if id(v) in members else np.zeros_like(s)
                                             for v, s in zip(variables, step)])
        combined = np.concatenate([by_id[id(layer.kernel)], by_id[id(layer.bias)][None, :]], 0)
        kfac_blocks[layer.name] = 0.5 * float(np.sum((a_factor.numpy() @ combined) * (combined @ g_factor.numpy())))
    log_std = [v for v in variables if "log_std" in v.path]
    log_std_block = half_quadratic([s if v is log_std[0] else np.zeros_like(s) for v, s in zip(variables, step)]) \
        if log_std else 0.0
    for variable, value, delta in zip(variables, before, step):  # the step as trained (shrunk)
        variable.assign(value + shrink * delta)
    return {"predicted": metrics["kfac_quadratic_kl"], "exact_kl": metrics["kfac_step_kl"],
            "exact_quadratic": exact_quadratic, "block_diagonal": sum(blocks.values()) + log_std_block,
            "log_std_block": log_std_block, "blocks": blocks, "kfac_blocks": kfac_blocks, "shrink": shrink,
            "step_size": metrics["kfac_step_size"], "total_steps": agent.total_steps}


def main(argv):
    del argv
    import tensorflow as tf
    import tensorflow_probability as tfp

    import tfpg
    from tfpg.optimizers.fisher import fisher_vector_product

    overrides = dict(item.split("=", 1) for item in FLAGS.hyperparameter)
    agent = tfpg.ACKTR(seed=FLAGS.seed, **{k: _value(v) for k, v in overrides.items()})
    records = []
    for update in range(FLAGS.updates):
        rollout = agent.collect(FLAGS.env, agent.config.rollout_steps)
        records.append(measure(agent, rollout, tf, tfp, fisher_vector_product))
    ratios = {
        "exact_kl / predicted": [r["exact_kl"] / r["predicted"] for r in records],
        "exact_quadratic / predicted": [r["exact_quadratic"] / r["predicted"] for r in records],
        "block_diagonal / predicted": [r["block_diagonal"] / r["predicted"] for r in records],
        "exact_quadratic / block_diagonal": [r["exact_quadratic"] / r["block_diagonal"] for r in records],
        "exact_kl / exact_quadratic": [r["exact_kl"] / r["exact_quadratic"] for r in records],
        "log_std_block / exact_quadratic": [r["log_std_block"] / r["exact_quadratic"] for r in records],
    }
    for name in records[0]["blocks"]:
        ratios[f"{name}: exact / K-FAC block"] = [r["blocks"][name] / r["kfac_blocks"][name] for r in records]
        ratios[f"{name}: share of block_diagonal"] = [r["blocks"][name] / r["block_diagonal"] for r in records]
    summary = {name: {"median": float(np.median(v)), "p10": float(np.percentile(v, 10)),
                      "p90": float(np.percentile(v, 90))} for name, v in ratios.items()}
    summary["shrunk fraction"] = float(np.mean([r["shrink"] < 1.0 for r in records]))
    summary["eta at eta_max fraction"] = float(np.mean([r["step_size"] >= agent.config.learning_rate * 0.999
                                                        for r in records]))
    print(json.dumps(summary, indent=1))
    if FLAGS.out:
        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
        with open(FLAGS.out, "w") as file:
            json.dump({"env": FLAGS.env, "seed": FLAGS.seed, "overrides": overrides, "summary": summary,
                       "updates": records}, file, indent=1)


if __name__ == "__main__":
    run_program(main)
