"""Builds an agent's policy, value model and π_old from its `NetworkSpec`, checking the user's parts.

Factories receive Gymnasium spaces (rebuilt from the recorded descriptions when
an agent is loaded from a checkpoint) and are called once per network needed:
the policy, the value model unless the network is shared, and π_old for the
algorithms that keep one.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfpg.action_masks import without_mask
from tfpg.config import AgentConfig
from tfpg.image_encoder import image_encoder, is_image
from tfpg.nested_encoder import nested_encoder
from tfpg.observations import ObservationSpec, is_nested
from tfpg.network_factories import NetworkSpec
from tfpg.networks import ObservationEncoder, PolicyNetwork, ValueNetwork
from tfpg.normalization import RunningNormalization
from tfpg.recurrent import RecurrentCore, sequence_input
from tfpg.user_recurrent import UserRecurrentPolicy, UserRecurrentValue, is_recurrent_model
from tfpg.space_descriptions import space_from_description
from tfpg.user_models import CHECK_BATCH, UserPolicy, UserValue, check_encoder, check_inference_layers, \
    check_policy, check_value


class ModelBuilder:
    """Makes the models of one agent.

    Args:
        spec: the networks to build.
        observation: observation space description.
        action: action space description.
        config: the agent's hyperparameters.
        normalizer: the shared observation normaliser, or None.
        action_mask: the Dict observation entry that masks the actions (`tfpg.action_masks.mask_entry`), or
            None.
    """

    def __init__(self, spec: NetworkSpec, observation: dict, action: dict, config: AgentConfig,
                 normalizer: RunningNormalization | None, action_mask: str | None = None):
        self.spec = spec
        self.observation, self.action = observation, action
        self.config = config
        self.normalizer = normalizer
        self.observation_space = space_from_description(observation)
        self.action_space = space_from_description(action)
        self.action_mask = action_mask
        # what tfpg's encoders and a user's encoder see: the observation without its action mask entry
        self.features_observation = without_mask(observation, self.action_mask)
        if config.shared_network and (spec.policy is not None or spec.value is not None):
            raise ValueError("shared_network=True shares tfpg's torso between its policy and value heads; with "
                             "policy= or value= models, set shared_network=False (a shared trunk can live inside "
                             "an encoder= instead).")
        if config.recurrent != "none" and (spec.policy is not None or spec.value is not None):
            raise ValueError(f"recurrent={config.recurrent!r} puts tfpg's recurrent layer into tfpg's own policy and "
                             f"value networks; with policy= or value= models, leave recurrent='none' (an encoder= "
                             f"works with the recurrent layer: it runs before it).")
        self._made: list = []
        self.example_observations = ObservationSpec(observation).example_batch(CHECK_BATCH)
        # the width of each recurrent model's state by role: tfpg's recurrent layer's, or what a user's
        # recurrent model declares (known once it is made)
        self.state_sizes = {}
        if config.recurrent != "none":
            size = RecurrentCore(config.recurrent, config.recurrent_units).state_size
            self.state_sizes = {"policy": size} if config.shared_network else {"policy": size, "value": size}

    @property
    def check_observations(self):
        """What the models are called with once, to build and check them: a batch of example observations, or
        for recurrent models a one-step sequence input of them from zero states."""
        if not self.state_sizes:
            return self.example_observations
        return sequence_input(self.example_observations, tf.ones([CHECK_BATCH]),
                              {role: tf.zeros([CHECK_BATCH, size]) for role, size in self.state_sizes.items()})

    def _recurrent(self) -> RecurrentCore | None:
        if self.config.recurrent == "none":
            return None
        return RecurrentCore(self.config.recurrent, self.config.recurrent_units, name="recurrent")

    def _new(self, role: str, factory, *arguments):
        name = getattr(factory, "__name__", repr(factory))
        signature = "(observation_space)" if role == "encoder" else "(observation_space, action_space)"
        try:
            made = factory(*arguments)
        except Exception as error:  # a user's factory can fail in any way; say which and how it was called
            if getattr(factory, "__module__", "").startswith("tfpg."):
                raise  # tfpg's own factories (the default encoders) name the problem and the fix themselves
            raise ValueError(f"The {role} factory {name!r} raised {type(error).__name__} when called as "
                             f"{name}{signature}: {error}") from None
        if not isinstance(made, keras.layers.Layer):
            raise ValueError(
                f"The {role} factory {name!r} returned {type(made).__name__}; "
                f"it must return a new keras {'layer' if role == 'encoder' else 'Model'}."
            )
        if any(made is earlier for earlier in self._made):
            raise ValueError(
                f"The {role} factory returned the same {type(made).__name__} object on two calls; it must build a "
                f"new one at each call (tfpg needs separate copies for the policy, the value model and π_old)."
            )
        self._made.append(made)
        return made

    def _encoder(self):
        """The user's encoder, or tfpg's CNN for images, or its per-leaf encoder for Dict and Tuple observations,
        or None (flat observations)."""
        observation = self.features_observation
        factory = self.spec.encoder or (image_encoder if is_image(observation) else None) \
            or (nested_encoder if is_nested(observation) else None)
        if factory is None:
            return None
        encoder = self._new("encoder", factory, space_from_description(observation))
        examples = ObservationSpec(observation).example_batch(CHECK_BATCH)
        preprocessed = ObservationEncoder(observation, self.normalizer, flatten=False)(examples)
        check_encoder(encoder, preprocessed)
        check_inference_layers(encoder, "encoder")
        return encoder

    def policy(self, name: str = "policy") -> keras.Model:
        """A new policy model (checked if it has user parts)."""
        config = self.config
        if self.spec.policy is not None:
            made = self._new("policy", self.spec.policy, self.observation_space, self.action_space)
            if is_recurrent_model(made):
                model = UserRecurrentPolicy(self.observation, self.action, self.normalizer, made, name=name)
                self.state_sizes["policy"] = model.state_size
            else:
                model = UserPolicy(self.observation, self.action, self.normalizer, made, name=name)
            check_policy(model, self.check_observations, self.action)
            check_inference_layers(model.model, "policy model")
            return model
        model = PolicyNetwork(self.observation, self.action, config.hidden_sizes, config.activation,
                              self.normalizer, config.initial_log_std, encoder=self._encoder(),
                              recurrent=self._recurrent(), action_mask=self.action_mask, name=name)
        model(self.check_observations)
        return model

    def value(self, policy: keras.Model) -> keras.Model:
        """A new value model, sharing `policy`'s encoder and torso if the network is shared."""
        config = self.config
        if self.spec.value is not None:
            made = self._new("value", self.spec.value, self.observation_space, self.action_space)
            if is_recurrent_model(made):
                if "policy" not in self.state_sizes:
                    raise ValueError("The value model is recurrent (it declares a state_size) but the policy is "
                                     "not: tfpg carries states for a recurrent policy only. Make the policy "
                                     "recurrent too, or the value model feed-forward.")
                model = UserRecurrentValue(self.observation, self.normalizer, made, name="value_model")
                self.state_sizes["value"] = model.state_size
            else:
                model = UserValue(self.observation, self.normalizer, made, name="value_model")
            check_value(model, self.check_observations)
            check_inference_layers(model.model, "value model")
            return model
        shared = config.shared_network and isinstance(policy, PolicyNetwork)
        model = ValueNetwork(self.observation, config.hidden_sizes, config.activation, self.normalizer,
                             policy.hidden if shared else None,
                             encoder=policy.features if shared else self._encoder(),
                             recurrent=policy.recurrent if shared else self._recurrent(),
                             state_key="policy" if shared else "value", action_mask=self.action_mask,
                             name="value_model")
        model(self.check_observations)
        return model

    def old_policy(self, policy: keras.Model) -> keras.Model:
        """π_old: a second policy of the same architecture, for the algorithms that keep one.

        Raises:
            ValueError: if a factory built a model with other variables than the policy's.
        """
        old = self.policy(name="old_policy")
        shapes = [tuple(v.shape) for v in policy.trainable_variables]
        old_shapes = [tuple(v.shape) for v in old.trainable_variables]
        if shapes != old_shapes:
            raise ValueError(
                f"Two calls of the policy factories built different models (variable shapes {shapes} and "
                f"{old_shapes}); a factory must build the same architecture at every call."
            )
        return old


def shares_torso(policy: keras.Model, value_model: keras.Model) -> bool:
    """Whether the value model is tfpg's value head on the policy's own encoder and hidden layers (`shared_network`),
    so one forward pass of the torso serves both."""
    return isinstance(policy, PolicyNetwork) and isinstance(value_model, ValueNetwork) \
        and value_model.features is policy.features and value_model.recurrent is policy.recurrent and len(value_model.hidden) == len(policy.hidden) \
        and all(a is b for a, b in zip(value_model.hidden, policy.hidden))


def snapshot(source: keras.Model, target: keras.Model) -> None:
    """Copies `source`'s trainable variables into `target` (same architecture)."""
    for old, new in zip(target.trainable_variables, source.trainable_variables):
        old.assign(new)
