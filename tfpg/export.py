"""Standalone SavedModel policies: servable with TensorFlow alone.

Signatures (batched: `observations` are float32 `[batch, *obs_shape]` for Box
spaces, uint8 for images, int64 `[batch]` for Discrete ones; for Dict and Tuple
spaces one input per leaf, `observations_<key>` or `observations_<index>`, with
nested keys joined by '_'); each signature declares those shapes, `[None, ...]`.
Inputs of another shape (the declared shapes are not enforced by TensorFlow),
inputs of different row counts, NaN or infinite values and out-of-range discrete
values are refused with an `InvalidArgumentError` naming the input and what it
allows (`serving_checks`).

- `serving_default(observations) -> {"actions"}`: deterministic env-ready
  actions (distribution mode, normalisation inside, clipped to Box bounds).
- `sample(observations) -> {"actions"}`: sampled env-ready actions.
- `log_prob(observations, actions) -> {"log_prob"}`: log π(a|s) of env-format
  actions (unclipped for Box).
- `value(observations) -> {"value"}`: V(s).

An action mask entry of a Dict observation (`tfpg.action_masks`) is the input
`observations_<action_mask_key>`, float32 0/1 values checked in the graph.

A recurrent policy's signatures also take `episode_start` (bool `[batch]`: the
state is zeroed first where True) and its states by name (`policy_state`, and
`value_state` when the value network has a recurrent layer of its own, float32
`[batch, S]`), and return the states after the step under the same names;
`initial_state(batch_size) -> {names}` gives zeros to start from. A serving loop
is `state = initial_state(n)`, then `out = serving_default(observations=...,
episode_start=..., **state)` and `state = {k: out[k] for k in state}` at every step.

`assets.extra/tfpg.json` records the algorithm, hyperparameters and spaces.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import tensorflow as tf

from tfpg.image_encoder import is_image
from tfpg.model_building import shares_torso
from tfpg.recurrent import sequence_input
from tfpg.sequence_models import SequenceModels
from tfpg.serving_checks import checked_input, same_rows

_SERVING_OBSERVATION_DTYPE = {"Box": tf.float32, "Discrete": tf.int64}


def _serving_observation_dtype(description: dict) -> tf.DType:
    """uint8 for images, float32 for other Box observations, int64 for Discrete ones."""
    return tf.uint8 if is_image(description) else _SERVING_OBSERVATION_DTYPE[description["type"]]


def _env_actions(flat: tf.Tensor, action: dict) -> tf.Tensor:
    kind = action["type"]
    if kind == "Box":
        low = tf.constant(np.asarray(action["low"], np.float32))
        high = tf.constant(np.asarray(action["high"], np.float32))
        clipped = tf.clip_by_value(flat, low, high)
        return tf.reshape(clipped, [-1, *action["shape"]])
    if kind == "Discrete":
        return tf.cast(flat[:, 0], tf.int64) + action["start"]
    if kind == "MultiDiscrete":
        start = tf.constant(np.asarray(action["start"], np.int64))
        return tf.reshape(tf.cast(flat, tf.int64) + start, [-1, *action["shape"]])
    return tf.reshape(tf.cast(flat, tf.int8), [-1, *action["shape"]])


def _flat_actions(actions: tf.Tensor, action: dict) -> tf.Tensor:
    kind = action["type"]
    if kind == "Box":
        return tf.reshape(tf.cast(actions, tf.float32), [tf.shape(actions)[0], -1])
    if kind == "Discrete":
        return tf.reshape(tf.cast(actions - action["start"], tf.int32), [-1, 1])
    if kind == "MultiDiscrete":
        start = tf.constant(np.asarray(action["start"], np.int64))
        flat = tf.reshape(tf.cast(actions, tf.int64), [tf.shape(actions)[0], -1]) - start
        return tf.cast(flat, tf.int32)
    return tf.cast(tf.reshape(actions, [tf.shape(actions)[0], -1]), tf.int32)


def _frozen(function, *specs):
    """A concrete function of `function` with every variable folded into a constant."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    return convert_variables_to_constants_v2(tf.function(function).get_concrete_function(*specs))


def _single(outputs):
    """The one tensor a frozen function returns (frozen functions return flat lists)."""
    return tf.nest.flatten(outputs)[0]


def _allowed_values(description: dict, shape, action_mask: bool = False) -> dict:
    """The `checked_input` value constraints of a space: finite Box values, discrete ranges, 0/1 action masks."""
    kind = description["type"]
    if action_mask:
        return {"low": 0, "high": 1}
    if is_image(description):
        return {}  # uint8 holds exactly the allowed values
    if kind == "Box":
        return {"finite": True}
    if kind == "Discrete":
        return {"low": description["start"], "high": description["start"] + description["n"] - 1}
    if kind == "MultiDiscrete":
        start = np.reshape(description["start"], shape)
        return {"low": start, "high": start + np.reshape(description["nvec"], shape) - 1}
    return {"low": 0, "high": 1}


class PolicyModule(tf.Module):
    """The serving functions of an agent, with its weights and statistics frozen in as constants.

    Freezing makes the SavedModel self-contained and immutable: it holds no
    variables, so it loads in TensorFlow 2 (`tf.saved_model.load`) and in
    TensorFlow 1-style graph runners (`saved_model_cli`, TF Serving) alike.

    The functions of a recurrent agent also take `episode_start` and the state of each of its models
    (`policy_state`, and `value_state` when the value network has a recurrent layer of its own), and return
    the states after the step next to their output; `initial_state(batch_size)` gives the states to start from.

    Args:
        agent: a built agent.
    """

    def __init__(self, agent):
        super().__init__(name="tfpg_policy")
        action = agent.action_description
        policy, value_model = agent.policy, agent.value_model
        spec = agent.observation_spec
        leaves = spec.leaves
        names = [f"observations_{leaf.path}" if spec.nested else "observations" for leaf in leaves]
        serving_dtypes = [_serving_observation_dtype(leaf.description) for leaf in leaves]
        leaf_specs = [tf.TensorSpec((None, *leaf.shape), dtype, name=name)
                      for leaf, dtype, name in zip(leaves, serving_dtypes, names)]
        env_action_shape = [] if action["type"] == "Discrete" else action["shape"]
        env_action_dtype = tf.float32 if action["type"] == "Box" else tf.int64
        actions_spec = tf.TensorSpec((None, *env_action_shape), env_action_dtype, name="actions")
        count = len(leaves)
        sizes = dict(agent.state_sizes)
        state_names = [f"{role}_state" for role in sizes]
        # a recurrent agent's inputs after the observations (and actions): the episode starts and each state
        memory_specs = [tf.TensorSpec((None,), tf.bool, name="episode_start"),
                        *[tf.TensorSpec((None, size), tf.float32, name=name)
                          for name, size in zip(state_names, sizes.values())]] if sizes else []
        sequences = SequenceModels(policy, value_model, shares_torso(policy, value_model), sizes) if sizes else None

        def model_input(flat, memory):
            """The models' input from serving tensors, one per leaf, cast to the models' dtypes."""
            observations = tf.nest.pack_sequence_as(spec.structure,
                                                    [tf.cast(t, leaf.dtype) for t, leaf in zip(flat, leaves)])
            if not sizes:
                return observations
            return sequence_input(observations, tf.cast(memory[0], tf.float32), dict(zip(sizes, memory[1:])))

        def distribution_and_states(flat, memory):
            if not sizes:
                return policy(model_input(flat, memory)), []
            distribution, _, final = sequences.advance(model_input(flat, memory))
            return distribution, [final[role] for role in sizes]

        def checked_inputs(flat, memory, actions=None):
            checked = [checked_input(t, name, leaf.shape, **_allowed_values(leaf.description, leaf.shape,
                                                                              leaf.path == agent.action_mask))
                       for t, name, leaf in zip(flat, names, leaves)]
            named = list(names)
            if actions is not None:
                checked.append(checked_input(actions, "actions", env_action_shape,
                                             **_allowed_values(action, env_action_shape)))
                named.append("actions")
            if memory:
                checked.append(checked_input(memory[0], "episode_start", []))
                checked += [checked_input(t, name, [size], finite=True)
                            for t, name, size in zip(memory[1:], state_names, sizes.values())]
                named += ["episode_start", *state_names]
            return same_rows(checked, named) if len(checked) > 1 else checked

        def mode(*inputs):
            distribution, states = distribution_and_states(inputs[:count], inputs[count:])
            return [_env_actions(distribution.mode(), action), *states]

        def sample(*inputs):
            distribution, states = distribution_and_states(inputs[:count], inputs[count:])
            return [_env_actions(distribution.sample(), action), *states]

        def log_prob(*inputs):
            distribution, states = distribution_and_states(inputs[:count], inputs[count + 1:])
            return [distribution.log_prob(_flat_actions(inputs[count], action)), *states]

        def value(*inputs):
            if not sizes:
                return [value_model(model_input(inputs, []))]
            _, values, final = sequences.advance(model_input(inputs[:count], inputs[count:]))
            return [values, *[final[role] for role in sizes]]

        frozen_mode = _frozen(mode, *leaf_specs, *memory_specs)
        frozen_sample = _frozen(sample, *leaf_specs, *memory_specs)
        frozen_log_prob = _frozen(log_prob, *leaf_specs, actions_spec, *memory_specs)
        frozen_value = _frozen(value, *leaf_specs, *memory_specs)

        def outputs(name, results):
            return {name: results[0], **dict(zip(state_names, results[1:]))}

        @tf.function(input_signature=[*leaf_specs, *memory_specs])
        def serving_default_fn(*inputs):
            return outputs("actions", frozen_mode(*checked_inputs(inputs[:count], inputs[count:])))

        @tf.function(input_signature=[*leaf_specs, *memory_specs])
        def sample_fn(*inputs):
            return outputs("actions", frozen_sample(*checked_inputs(inputs[:count], inputs[count:])))

        @tf.function(input_signature=[*leaf_specs, actions_spec, *memory_specs])
        def log_prob_fn(*inputs):
            checked = checked_inputs(inputs[:count], inputs[count + 1:], inputs[count])
            # checked_inputs puts the actions after the observations, where the frozen function takes them
            return outputs("log_prob", frozen_log_prob(*checked))

        @tf.function(input_signature=[*leaf_specs, *memory_specs])
        def value_fn(*inputs):
            return outputs("value", frozen_value(*checked_inputs(inputs[:count], inputs[count:])))

        self.serving_default = serving_default_fn
        self.sample = sample_fn
        self.log_prob = log_prob_fn
        self.value = value_fn
        self.state_sizes = dict(zip(state_names, sizes.values()))
        if sizes:
            @tf.function(input_signature=[tf.TensorSpec([], tf.int32, name="batch_size")])
            def initial_state_fn(batch_size):
                checks = [tf.debugging.Assert(batch_size >= 0, ["batch_size must be at least 0; got", batch_size])]
                with tf.control_dependencies(checks):
                    return {name: tf.zeros([batch_size, size]) for name, size in self.state_sizes.items()}

            self.initial_state = initial_state_fn

    def signatures(self) -> dict:
        """The SavedModel's signatures by name."""
        functions = {"serving_default": self.serving_default, "sample": self.sample, "log_prob": self.log_prob,
                     "value": self.value}
        if self.state_sizes:
            functions["initial_state"] = self.initial_state
        return {name: function.get_concrete_function() for name, function in functions.items()}


SAVED_MODEL_ENTRIES = frozenset({"saved_model.pb", "fingerprint.pb", "variables", "assets", "assets.extra"})


def _foreign_entries(path: str) -> list[str]:
    """What in an existing export folder tfpg did not write: entries other than a SavedModel's, or a
    SavedModel without tfpg's metadata. Empty for a missing or empty folder or an earlier tfpg export."""
    entries = sorted(os.listdir(path))
    foreign = [entry for entry in entries if entry not in SAVED_MODEL_ENTRIES]
    if entries and not os.path.exists(os.path.join(path, "assets.extra", "tfpg.json")):
        foreign += [f"{entry} (of a SavedModel tfpg did not write)" for entry in entries if entry in SAVED_MODEL_ENTRIES]
    return foreign


def export_policy(agent, path: str, overwrite: bool = False) -> str:
    """Writes `agent`'s policy as a SavedModel at `path`, replacing an older tfpg export atomically.

    The SavedModel is first written next to `path` and moved into place only
    once complete, so an error or interrupt never leaves a half-written policy
    (an existing export at `path` stays until the new one is ready). A folder
    holding anything tfpg did not write is refused unless `overwrite`, and then
    only the SavedModel's own entries are replaced; other files are kept.

    Args:
        agent: a built agent.
        path: the SavedModel directory.
        overwrite: replace the SavedModel entries of a folder that holds other files or a foreign
            SavedModel.

    Returns:
        `path`.

    Raises:
        ValueError: the agent is not built, `path` holds files tfpg did not write (without `overwrite`), or
            cannot be written.
    """
    if not agent.built:
        raise ValueError("Nothing to export: the agent is not built yet (fit, collect or build it first).")
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"Export path {path!r} is a file; choose a directory path.")
    foreign = _foreign_entries(path) if os.path.isdir(path) else []
    if foreign and not overwrite:
        raise ValueError(
            f"Export path {path!r} holds files tfpg did not write: {', '.join(foreign)}. Refusing to replace "
            f"them; choose a new path, or pass overwrite=True to replace only the SavedModel's entries there "
            f"(other files are kept)."
        )
    staging = f"{path}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    module = PolicyModule(agent)
    signatures = module.signatures()
    try:
        os.makedirs(staging)
    except OSError as error:
        raise ValueError(f"Cannot export to {path!r}: {error.strerror or error} ({error.filename or staging}). "
                         f"Choose a path in a directory you can write to.") from None
    try:
        tf.saved_model.save(module, staging, signatures=signatures)
        os.makedirs(os.path.join(staging, "assets.extra"), exist_ok=True)
        with open(os.path.join(staging, "assets.extra", "tfpg.json"), "w") as file:
            json.dump({**json.loads(agent._metadata_json()), "total_steps": agent.total_steps}, file)
        if foreign:
            _replace_entries(staging, path)
        elif os.path.exists(path):
            retired = f"{path}.old-{os.getpid()}"
            os.replace(path, retired)
            try:
                os.replace(staging, path)
            except BaseException:
                os.replace(retired, path)
                raise
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def _replace_entries(staging: str, path: str) -> None:
    """Moves the SavedModel entries of `staging` into `path`, retiring `path`'s own; other files stay.

    On an error the retired entries are put back."""
    retired = f"{path}.old-{os.getpid()}"
    os.makedirs(retired, exist_ok=True)
    moved_out, moved_in = [], []
    try:
        for entry in sorted(SAVED_MODEL_ENTRIES):
            if os.path.exists(os.path.join(path, entry)):
                os.replace(os.path.join(path, entry), os.path.join(retired, entry))
                moved_out.append(entry)
        for entry in sorted(os.listdir(staging)):
            os.replace(os.path.join(staging, entry), os.path.join(path, entry))
            moved_in.append(entry)
    except BaseException:
        for entry in moved_in:
            shutil.rmtree(os.path.join(path, entry), ignore_errors=True)
            if os.path.isfile(os.path.join(path, entry)):
                os.remove(os.path.join(path, entry))
        for entry in moved_out:
            os.replace(os.path.join(retired, entry), os.path.join(path, entry))
        raise
    finally:
        shutil.rmtree(retired, ignore_errors=True)
