"""The user's full policy and value models, behind tfpg's preprocessing, and the checks they must pass.

`UserPolicy` and `UserValue` feed the user's model the preprocessed
observations (running-normalised `Box` values in their own shape when
`normalize_observations` is on, images scaled to [0, 1], one-hot `Discrete`
values, and dicts or tuples of these for nested spaces), exactly as tfpg's own
networks see them, so the normalisation is checkpointed and exported with the
policy. The checks run once on a small batch when the agent is built, so a model
that does not fit the spaces is refused with a message saying what was expected.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfpg.normalization import RunningNormalization
from tfpg.networks import ObservationEncoder, action_dtype
from tfpg.recurrent import OBSERVATIONS, is_sequence_input
from tfpg.space_descriptions import action_size, head_classes

tfd = tfp.distributions

CHECK_BATCH = 2  # two rows, so that a batch dimension cannot pass for a feature dimension


class UserPolicy(keras.Model):
    """Preprocessed observations → the user's policy model → its distribution.

    For a `Discrete` action space the model may return a `tfd.Categorical` with
    batch shape `[batch]`; it is re-expressed over tfpg's flat actions `[batch, 1]`.

    Args:
        observation: observation space description.
        action: action space description.
        normalizer: shared observation normaliser or None.
        model: the user's model (preprocessed observations → `tfd.Distribution`).
    """

    def __init__(self, observation: dict, action: dict, normalizer: RunningNormalization | None,
                 model: keras.layers.Layer, **kwargs):
        super().__init__(**kwargs)
        self.encoder = ObservationEncoder(observation, normalizer, flatten=False)
        self.model = model
        self.discrete = action["type"] == "Discrete"

    def call(self, observations):
        return over_flat_actions(self.model(self.encoder(observations)), self.discrete)


def over_flat_actions(distribution, discrete: bool):
    """A user's distribution over tfpg's flat actions: for a `Discrete` action space a `tfd.Categorical` of batch
    shape `[batch]` is re-expressed over actions `[batch, 1]`; anything else is returned as it is."""
    if discrete and isinstance(distribution, tfd.Categorical) \
            and distribution.batch_shape.rank == 1 and distribution.event_shape.rank == 0:
        logits = distribution.logits_parameter()[:, None, :]
        return tfd.Independent(tfd.Categorical(logits=logits, dtype=distribution.dtype), 1)
    return distribution


class UserValue(keras.Model):
    """Preprocessed observations → the user's value model → values `[batch]` (a `[batch, 1]` output is squeezed).

    Args:
        observation: observation space description.
        normalizer: shared observation normaliser or None.
        model: the user's model (preprocessed observations → values).
    """

    def __init__(self, observation: dict, normalizer: RunningNormalization | None, model: keras.layers.Layer,
                 **kwargs):
        super().__init__(**kwargs)
        self.encoder = ObservationEncoder(observation, normalizer, flatten=False)
        self.model = model

    def call(self, observations):
        if is_sequence_input(observations):  # a feed-forward value model beside a recurrent policy
            observations = observations[OBSERVATIONS]
        return squeezed_values(self.model(self.encoder(observations)))


def squeezed_values(values):
    """Values `[batch]` from a user's value model output (`[batch, 1]` is squeezed)."""
    if isinstance(values, tf.Tensor) and values.shape.rank == 2 and values.shape[-1] == 1:
        return tf.squeeze(values, axis=-1)
    return values


def _described(observations) -> str:
    """'shape (2, 4) and dtype float32', leaf by leaf for nests."""
    def one(tensor):
        return f"shape {tuple(tensor.shape)} and dtype {tensor.dtype.name}"

    if isinstance(observations, tf.Tensor):
        return one(observations)
    return str(tf.nest.map_structure(one, observations))


def _called(model: keras.layers.Layer, what: str, observations):
    try:
        return model(observations)
    except Exception as error:  # a user's model can fail in any way; say where
        raise ValueError(
            f"The {what} could not be called on a batch of observations of {_described(observations)} "
            f"({type(error).__name__}: {error}). It must accept the observations as tfpg feeds them: Box values "
            f"normalised in their own shape, images scaled to [0, 1], Discrete ones one-hot, Dict and Tuple "
            f"observations as a dict or tuple of those."
        ) from None


def check_policy(policy: keras.Model, observations: tf.Tensor, action: dict) -> None:
    """Refuses a policy that does not return a distribution over the action space's flat actions.

    Raises:
        ValueError: naming what the model returned and what was expected.
    """
    distribution = _called(policy, "policy model", observations)
    size, dtype = action_size(action), action_dtype(action)
    expected = (f"a tfd.Distribution with batch shape [{CHECK_BATCH}], event shape [{size}] and dtype "
                f"{dtype.name}")
    if action["type"] == "Discrete":
        expected += " (or a tfd.Categorical with batch shape [batch])"
    if not isinstance(distribution, tfd.Distribution):
        raise ValueError(
            f"The policy model returned {type(distribution).__name__} for a batch of {CHECK_BATCH} observations; "
            f"expected {expected}, e.g. tfd.Independent(tfd.Normal(mean, std), 1) for Box actions or "
            f"tfd.Categorical(logits=...) for Discrete ones."
        )
    got = (f"batch shape {distribution.batch_shape.as_list()}, event shape {distribution.event_shape.as_list()}, "
           f"dtype {tf.as_dtype(distribution.dtype).name}")
    if distribution.batch_shape.as_list() != [CHECK_BATCH] or distribution.event_shape.as_list() != [size] \
            or tf.as_dtype(distribution.dtype) != dtype:
        raise ValueError(f"The policy model returned a {type(distribution).__name__} with {got} for a batch of "
                         f"{CHECK_BATCH} observations; expected {expected}.")
    if action["type"] != "Box":
        _check_discrete_support(distribution, action)
    _check_analytic(distribution)
    _check_learnable(policy, observations)


def _check_learnable(policy: keras.Model, observations) -> None:
    """Refuses a policy whose log-probabilities of its own samples are not finite (a deterministic distribution, a
    zero scale) or do not depend on its trainable variables (a fixed, e.g. uniform, distribution): no policy
    gradient can train either, and the first update would otherwise stop with advice that does not apply."""
    with tf.GradientTape() as tape:
        distribution = policy(observations)
        log_probs = distribution.log_prob(tf.stop_gradient(distribution.sample(seed=[0, 1])))
    if not bool(tf.reduce_all(tf.math.is_finite(log_probs))):
        raise ValueError(
            f"The policy model's {type(distribution).__name__} gives its own samples the log-probabilities "
            f"{log_probs.numpy().tolist()}; they must be finite for a policy gradient (a deterministic "
            f"distribution or a zero standard deviation has none). Return a stochastic distribution, e.g. "
            f"tfd.Independent(tfd.Normal(mean, std), 1) with std > 0.")
    variables = policy.trainable_variables
    if not variables or all(gradient is None for gradient in tape.gradient(log_probs, variables)):
        raise ValueError(
            f"The policy model's {type(distribution).__name__} does not depend on the model's trainable variables, "
            f"so no update can change it (a fixed distribution, e.g. uniform). Compute the distribution's "
            f"parameters from the observations with the model's layers.")


def _check_analytic(distribution: tfd.Distribution) -> None:
    """Refuses a distribution without an analytic entropy or KL divergence, which every update reads (the entropy
    bonus and metric, the KL of PPO's metrics and penalty, of NPG's and TRPO's trust region and Fisher-vector
    products, of ACKTR's step size)."""
    for what, compute in (("entropy()", distribution.entropy),
                          ("KL divergence (tfd.kl_divergence(p, q))",
                           lambda: tfd.kl_divergence(distribution, distribution))):
        try:
            compute()
        except NotImplementedError as error:
            raise ValueError(
                f"The policy model's {type(distribution).__name__} has no analytic {what} ({error}), which tfpg's "
                f"updates need (entropy bonus and metrics; the KL of PPO's metrics, NPG's and TRPO's trust region, "
                f"ACKTR's step). Return a distribution that has both (Normal, Categorical, Bernoulli, and "
                f"tfd.Independent or tfd.Blockwise of them), or register a KL with tfd.RegisterKL."
            ) from None


# Up to this many joint actions, the check sums the policy's probabilities over all of them.
_ENUMERATED_ACTIONS = 4096


def _check_discrete_support(distribution: tfd.Distribution, action: dict) -> None:
    """Refuses a discrete policy whose support is not the action space's: a head with too few classes never
    picks the last actions, one with too many picks actions the env does not have.

    With at most `_ENUMERATED_ACTIONS` joint actions, the probabilities of all valid flat actions must sum to
    1 for each row; beyond that, each head's last class must have a finite log-probability.
    """
    classes = head_classes(action)
    dtype = tf.as_dtype(distribution.dtype)
    space = f"{action['type']} {classes if action['type'] != 'Discrete' else action['n']}"
    try:
        if int(np.prod(classes)) <= _ENUMERATED_ACTIONS:
            grid = np.stack(np.meshgrid(*[np.arange(n) for n in classes], indexing="ij"), -1).reshape(-1, len(classes))
            log_probs = distribution.log_prob(tf.constant(grid[:, None, :], dtype))  # [joint actions, batch]
            mass = tf.reduce_sum(tf.exp(tf.cast(log_probs, tf.float64)), axis=0).numpy()
            if np.all(np.abs(mass - 1.0) < 1e-3):
                return
            problem = f"puts total probability {mass.tolist()} on the valid actions (expected 1)"
        else:
            last = np.broadcast_to(np.asarray(classes) - 1, (CHECK_BATCH, len(classes)))
            if np.all(np.isfinite(distribution.log_prob(tf.constant(last, dtype)).numpy())):
                return
            problem = "gives the last class of its heads a non-finite log-probability"
    except (tf.errors.InvalidArgumentError, ValueError) as error:
        problem = f"cannot give the valid actions a log-probability ({type(error).__name__}: {error})"
    raise ValueError(f"The policy model's distribution {problem} of the action space {space}: each action entry "
                     f"must have exactly as many classes as the space has values there ({classes}).")


def check_value(value_model: keras.Model, observations: tf.Tensor) -> None:
    """Refuses a value model that does not return one float value per observation.

    Raises:
        ValueError: naming what the model returned and what was expected.
    """
    values = _called(value_model, "value model", observations)
    if not isinstance(values, tf.Tensor) or not values.dtype.is_floating or values.shape.as_list() != [CHECK_BATCH]:
        got = (f"a {values.dtype.name} tensor of shape {values.shape.as_list()}" if isinstance(values, tf.Tensor)
               else type(values).__name__)
        raise ValueError(f"The value model returned {got} for a batch of {CHECK_BATCH} observations; expected "
                         f"float values of shape [{CHECK_BATCH}] (or [{CHECK_BATCH}, 1]).")


# Layers that behave differently in training: tfpg calls every model in inference mode, so they would not.
_TRAINING_ONLY = (keras.layers.Dropout, keras.layers.SpatialDropout1D, keras.layers.SpatialDropout2D,
                  keras.layers.SpatialDropout3D, keras.layers.GaussianDropout, keras.layers.GaussianNoise,
                  keras.layers.AlphaDropout, keras.layers.BatchNormalization)


def check_inference_layers(model: keras.layers.Layer, what: str) -> None:
    """Refuses layers that would silently do nothing or carry state across calls in tfpg's models.

    tfpg calls the user's models in inference mode (no `training=True`), in acting and in the update alike,
    so that π_old's log-probabilities and the update's agree exactly (on-policy ratios start at 1, and a
    batch's rows do not depend on each other): Dropout would never drop, noise layers never add noise, and
    BatchNormalization would never update its statistics. A stateful recurrent layer would carry its state
    from one batch of rows to the next, across env copies and shuffled minibatches.

    Raises:
        ValueError: naming the first such layer and what to use instead.
    """
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if isinstance(layer, _TRAINING_ONLY):
            instead = "LayerNormalization" if isinstance(layer, keras.layers.BatchNormalization) else \
                "a regulariser that works in inference mode (weight decay, an entropy bonus), or drop the layer"
            raise ValueError(
                f"The {what} holds layer {layer.name!r} ({type(layer).__name__}), which only acts in training mode. "
                f"tfpg calls models in inference mode, in acting and updates alike, so that π_old and the update "
                f"compute the same log-probabilities; this layer would silently do nothing. Use {instead}.")
        if getattr(layer, "stateful", False):
            raise ValueError(
                f"The {what} holds the stateful recurrent layer {layer.name!r} ({type(layer).__name__}): tfpg "
                f"calls models on batches of rows from all env copies, shuffled, so its state would leak between "
                f"them. Use stateful=False; a recurrent layer then sees what one observation holds (e.g. a window "
                f"of frames).")


def check_encoder(encoder: keras.layers.Layer, observations: tf.Tensor) -> None:
    """Refuses an encoder that does not map a batch of preprocessed observations to float features.

    Raises:
        ValueError: naming what the encoder returned and what was expected.
    """
    features = _called(encoder, "encoder", observations)
    if not isinstance(features, tf.Tensor) or not features.dtype.is_floating or features.shape.rank is None \
            or features.shape.rank < 2 or features.shape[0] != CHECK_BATCH \
            or not np.prod(features.shape[1:]) > 0:
        got = (f"a {features.dtype.name} tensor of shape {features.shape.as_list()}"
               if isinstance(features, tf.Tensor) else type(features).__name__)
        raise ValueError(f"The encoder returned {got} for a batch of {CHECK_BATCH} observations; expected float "
                         f"features of shape [{CHECK_BATCH}, ...] with a known, non-zero size per row.")
