"""`CallbackList`: how `fit` calls its callbacks, and the checks it makes of them before training."""

from __future__ import annotations

from typing import Iterable

import keras


class CallbackList:
    """Calls a list of callbacks in order.

    Args:
        callbacks: the callbacks.
        agent: the agent handed to each callback's `set_model`.
        params: the dict handed to each callback's `set_params`.
    """

    def __init__(self, callbacks: Iterable[keras.callbacks.Callback], agent, params: dict):
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            _check_callback(callback)
        for callback in self.callbacks:
            callback.set_model(agent)
            callback.set_params(params)
        self._monitors_checked = False

    def _call(self, hook: str, *args) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(*args)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if not self._monitors_checked:
            self._check_monitors(logs or {})
            self._monitors_checked = True
        self._call("on_epoch_end", epoch, logs)

    def _check_monitors(self, logs: dict) -> None:
        """A Keras callback that watches a metric (`EarlyStopping`, `ReduceLROnPlateau`) must watch one that is
        logged: checked on the first iteration's logs, before any callback sees them."""
        later = {name for callback in self.callbacks for name in getattr(callback, "adds_metrics", ())}
        for callback in self.callbacks:
            monitor = getattr(callback, "monitor", None)
            if isinstance(monitor, str) and monitor not in logs and monitor not in later:
                raise ValueError(
                    f"{type(callback).__name__}(monitor={monitor!r}) watches a metric fit does not log, so it would "
                    f"never act. Logged metrics: {', '.join(sorted(logs) + sorted(later))}."
                )


def _check_callback(callback) -> None:
    """Raises a `ValueError` for an object `fit` cannot call as a callback, before training starts."""
    if not isinstance(callback, keras.callbacks.Callback):
        raise ValueError(f"callbacks must be keras.callbacks.Callback instances (such as tfpg.callbacks.Checkpoint), "
                         f"got {type(callback).__name__}.")
    if isinstance(callback, (keras.callbacks.ModelCheckpoint, keras.callbacks.BackupAndRestore)):
        raise ValueError(f"keras.callbacks.{type(callback).__name__} saves a Keras model, not an agent; use "
                         f"tfpg.callbacks.Checkpoint(directory, every=...), which saves everything a resume needs.")
