"""A recurrent agent's policy and value networks run over sequences, returning the states next to the outputs."""

from __future__ import annotations

import tensorflow as tf



class SequenceModels:
    """What acting, `predict` and evaluating a batch need of a recurrent agent's models (`tfpg.recurrent`).

    Args:
        policy: the recurrent policy (tfpg's `PolicyNetwork` or a user's `UserRecurrentPolicy`).
        value_model: the value model: recurrent (its state under the role "value") or feed-forward.
        shares_torso: whether the value head reads the policy's torso (one pass serves both).
        state_sizes: the width of each role's state.
    """

    def __init__(self, policy, value_model, shares_torso: bool, state_sizes: dict):
        self.policy = policy
        self.value_model = value_model
        self.shares_torso = shares_torso
        self.value_is_recurrent = "value" in state_sizes

    def step(self, inputs):
        """`(distribution, state)`: the policy over the input's steps and its state after the last one."""
        distribution, _, final = self.policy.sequence(inputs)
        return distribution, final

    def _values(self, inputs, features=None) -> tuple:
        """`(values, received, final)` by role: the value model's part of a pass over a sequence input."""
        if self.shares_torso:
            return self.value_model.values_of(features), {}, {}
        if not self.value_is_recurrent:
            return self.value_model(inputs), {}, {}
        values, received, final = self.value_model.sequence(inputs)
        return values, {"value": received}, {"value": final}

    def _policy(self, inputs) -> tuple:
        """`(distribution, received, final, features)`; the features only where the value head shares them."""
        if self.shares_torso:
            features, received, final = self.policy.torso_and_state(inputs)
            return self.policy.head(features), received, final, features
        distribution, received, final = self.policy.sequence(inputs)
        return distribution, received, final, None

    def advance(self, inputs) -> tuple:
        """`(distribution, values, final)`: the policy and the values over the input's steps, and each recurrent
        model's state after the last step by role."""
        distribution, _, final, features = self._policy(inputs)
        values, _, value_final = self._values(inputs, features)
        return distribution, values, {"policy": final, **value_final}

    def log_probs_and_values(self, inputs, actions) -> tuple[tf.Tensor, tf.Tensor, dict, dict]:
        """`(log π(a|·), V, received, final)` over a sequence input: `received` and `final` hold, by role, the
        state each step received `[batch, S]` and the state after the last step `[N, S]`."""
        distribution, received, final, features = self._policy(inputs)
        values, value_received, value_final = self._values(inputs, features)
        return (distribution.log_prob(actions), values, {"policy": received, **value_received},
                {"policy": final, **value_final})
