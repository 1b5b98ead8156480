"""A recurrent agent's policy and value networks run over sequences, returning the states next to the outputs."""

from __future__ import annotations

import tensorflow as tf

from tfpg.networks import PolicyNetwork, ValueNetwork


class SequenceModels:
    """What acting, `predict` and evaluating a batch need of tfpg's recurrent networks (`tfpg.recurrent`).

    Args:
        policy: the recurrent `PolicyNetwork`.
        value_model: the recurrent `ValueNetwork` (on the policy's torso when they share it).
        shares_torso: whether the value head reads the policy's torso (one pass serves both).
    """

    def __init__(self, policy: PolicyNetwork, value_model: ValueNetwork, shares_torso: bool):
        self.policy = policy
        self.value_model = value_model
        self.shares_torso = shares_torso

    def step(self, inputs):
        """`(distribution, state)`: the policy over the input's steps and its state after the last one."""
        features, _, final = self.policy.torso_and_state(inputs)
        return self.policy.head(features), final

    def advance(self, inputs) -> tuple:
        """`(distribution, values, final)`: the policy and the values over the input's steps, and each model's
        state after the last step by role."""
        features, _, final = self.policy.torso_and_state(inputs)
        if self.shares_torso:
            return self.policy.head(features), self.value_model.values_of(features), {"policy": final}
        value_features, _, value_final = self.value_model.torso_and_state(inputs)
        return (self.policy.head(features), self.value_model.values_of(value_features),
                {"policy": final, "value": value_final})

    def log_probs_and_values(self, inputs, actions) -> tuple[tf.Tensor, tf.Tensor, dict, dict]:
        """`(log π(a|·), V, received, final)` over a sequence input: `received` and `final` hold, by role, the
        state each step received `[batch, S]` and the state after the last step `[N, S]`."""
        features, received, final = self.policy.torso_and_state(inputs)
        log_probs = self.policy.head(features).log_prob(actions)
        if self.shares_torso:
            return log_probs, self.value_model.values_of(features), {"policy": received}, {"policy": final}
        value_features, value_received, value_final = self.value_model.torso_and_state(inputs)
        return (log_probs, self.value_model.values_of(value_features),
                {"policy": received, "value": value_received}, {"policy": final, "value": value_final})
