"""Action masks: which actions the env allows at each step, read from an entry of a Dict observation.

The entry named by the `action_mask_key` setting ("action_mask" by default) holds 0/1 values: for `Discrete(n)`
actions one per action (n values), for `MultiDiscrete(nvec)` those of every sub-action one after another
(sum(nvec) values), as sb3-contrib's `MaskablePPO` and PettingZoo read them. It may be a `Box(0, 1, (n,))` of
any numeric dtype (PettingZoo's is int8) or a `MultiBinary(n)`.

tfpg's policies give every masked category the logit −10⁹ (finite, as for the padded categories of
`MultiDiscrete` heads): its probability is exactly 0 in float32, so it is never sampled nor chosen as the mode,
and the log-probabilities, entropies and KL divergences (so the Fisher-vector products, the line search and
K-FAC) are those of the masked distribution. The entry is never normalised nor encoded as a feature: the
encoders see the observation without it.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import tensorflow as tf

from tfpg.errors import EnvError

MASKED_LOGIT = -1e9
MASKABLE_ACTIONS = ("Discrete", "MultiDiscrete")


def action_categories(action: dict) -> list[int]:
    """The number of categories of each sub-action of a Discrete or MultiDiscrete description, in order."""
    return [action["n"]] if action["type"] == "Discrete" else [int(n) for n in np.reshape(action["nvec"], -1)]


def mask_entry(observation: dict, action: dict, key: str) -> str | None:
    """The key of the observation entry that masks the actions, or None where there is none.

    Args:
        observation: the observation space description.
        action: the action space description.
        key: the `action_mask_key` setting ("" turns masking off).

    Raises:
        ValueError: for an entry of that name that cannot mask these actions, naming the entry, what it is and
            the fix.
    """
    if not key or observation["type"] != "Dict" or key not in observation["spaces"]:
        return None
    entry = observation["spaces"][key]
    off = "rename the entry, or pass action_mask_key='' to read it as an ordinary observation"
    if action["type"] not in MASKABLE_ACTIONS:
        raise ValueError(f"The observation entry {key!r} is read as an action mask, which applies to Discrete and "
                         f"MultiDiscrete actions; this env's actions are {action['type']}: {off}.")
    size = sum(action_categories(action))
    shape = entry.get("shape")
    bounded = entry["type"] == "Box" and np.all(np.asarray(entry["low"]) >= 0) and np.all(np.asarray(entry["high"]) <= 1)
    if not bounded or shape != [size]:
        what = f"Box of shape {tuple(shape)} in [{entry['low']}, {entry['high']}]" if entry["type"] == "Box" \
            else entry["type"]
        raise ValueError(f"The action mask entry {key!r} is a {what}, but these actions need one 0/1 value per "
                         f"category: Box(0, 1, ({size},)) or MultiBinary({size}) (for MultiDiscrete, the values of "
                         f"each sub-action one after another). Fix the env's observation space, or {off}.")
    if len(observation["spaces"]) == 1:
        raise ValueError(f"The observation holds only the action mask {key!r}: a policy needs an observation "
                         f"besides it. Add the env's observation as another entry of the Dict.")
    return key


def without_mask(observation: dict, key: str | None) -> dict:
    """The observation description without the mask entry: what the encoders see."""
    if key is None:
        return observation
    return {**observation, "spaces": {name: space for name, space in observation["spaces"].items() if name != key}}


def split_mask(observations, key: str | None):
    """`(observations without the mask entry, the mask or None)` of a Dict batch."""
    if key is None:
        return observations, None
    return {name: value for name, value in observations.items() if name != key}, observations[key]


class MaskedLogits:
    """Sets the logits of the masked categories of a categorical head to −10⁹.

    Args:
        action: the Discrete or MultiDiscrete action description.
    """

    def __init__(self, action: dict):
        categories = action_categories(action)
        widest = max(categories)
        size = sum(categories)
        # index into the flat mask with a 0 appended: padded categories of a MultiDiscrete head read that 0
        starts = np.cumsum([0] + categories[:-1])
        self.index = np.asarray([[start + c if c < n else size for c in range(widest)]
                                 for start, n in zip(starts, categories)], np.int32)
        self.index_tensor = tf.constant(self.index)

    def __call__(self, logits: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
        """Masked `logits [batch, D, widest]` from a flat mask `[batch, sum(nvec)]` (nonzero: allowed)."""
        allowed = tf.cast(mask, tf.float32) > 0.5
        allowed = tf.concat([allowed, tf.zeros_like(allowed[:, :1])], axis=1)
        return tf.where(tf.gather(allowed, self.index_tensor, axis=1), logits, MASKED_LOGIT)

    def numpy(self, logits: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The same in NumPy (for `tfpg.numpy_policy`)."""
        allowed = np.reshape(mask, (len(mask), -1)) > 0.5
        allowed = np.concatenate([allowed, np.zeros((len(mask), 1), bool)], axis=1)
        return np.where(allowed[:, self.index], logits, np.float32(MASKED_LOGIT))


def check_some_allowed(mask: np.ndarray, action: dict, row_name: Callable[[int], str],
                       error: type[Exception] = EnvError) -> None:
    """Raises `error` where a row of a flat mask allows no category of some sub-action.

    Args:
        mask: `[N, sum(nvec)]` mask values.
        action: the action description.
        row_name: names row i in the message (e.g. "env copy 3 at step 17 of the batch").
        error: the exception class (an `EnvError` for what an env returned).
    """
    mask = np.reshape(np.asarray(mask), (len(mask), -1)) > 0.5
    start = 0
    for part, n in enumerate(action_categories(action)):
        empty = ~mask[:, start:start + n].any(axis=1)
        if empty.any():
            which = f" for sub-action {part}" if action["type"] == "MultiDiscrete" else ""
            raise error(f"The action mask of {row_name(int(np.flatnonzero(empty)[0]))} allows no action{which}: "
                        f"every category is 0. At least one action must be allowed at every step (an env ends "
                        f"the episode instead).")
        start += n
