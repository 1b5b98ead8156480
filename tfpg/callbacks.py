"""Callbacks with Keras hook names; an iteration of `fit` is an epoch.

Every callback here subclasses `keras.callbacks.Callback`, so Keras's own
callbacks that only read `logs` (`History`, `LambdaCallback`, `CSVLogger`,
`TerminateOnNaN`...) also work with `fit`. `self.agent` (alias `self.model`)
is the agent being trained; setting `agent.stop_training = True` ends `fit`
after the current iteration.
"""

from __future__ import annotations

import csv
import math
import numbers
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from tfpg.config import positive_int


class Callback(keras.callbacks.Callback):
    """Base class: Keras's `Callback` with the agent as `self.agent`."""

    @property
    def agent(self):
        """The agent being trained."""
        return self.model


class ProgressBar(Callback):
    """Progress over environment steps: ETA, return, steps/s and losses.

    On a terminal, a `keras.utils.Progbar` redrawn in place. Elsewhere (a file,
    a pipe, a CI log) plain lines without colours or carriage returns: one after
    the first iteration, then one every `interval` seconds, and one at the end.

    Args:
        metrics: the log keys shown.
        interval: seconds between plain lines.
    """

    def __init__(self, metrics: tuple[str, ...] = ("episode_return", "steps_per_second", "entropy",
                                                   "approx_kl"), interval: float = 10.0):
        super().__init__()
        self.metrics = metrics
        self.interval = interval
        self.progbar = None
        self.start_steps = 0
        self._started = self._printed = 0.0
        self._last_line = None

    def on_train_begin(self, logs=None):
        self.start_steps = self.params["initial_steps"]
        self._started = time.monotonic()
        self._printed = None
        self._last_line = None
        if sys.stdout.isatty():
            self.progbar = _ContinuedProgbar(self.start_steps + self.params["steps"], self.start_steps,
                                             stateful_metrics=list(self.metrics), unit_name="step")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        values = [(k, logs[k]) for k in self.metrics if k in logs and _is_number(logs[k])]
        done = min(int(logs.get("total_steps", 0)), self.start_steps + self.params["steps"])
        if self.progbar is not None:
            self.progbar.update(done, values=values, finalize=False)
            return
        self._last_line = self._plain_line(done, values)
        now = time.monotonic()
        if self._printed is None or now - self._printed >= self.interval:
            print(self._last_line, flush=True)
            self._printed = now
            self._last_line = None

    def _plain_line(self, done: int, values: list) -> str:
        """The line for `done` of the run's steps: counted from 0, not from where this `fit` started (a resume),
        with the remaining time estimated from this `fit`'s pace."""
        total = self.start_steps + self.params["steps"]
        elapsed = time.monotonic() - self._started
        this_fit = done - self.start_steps
        remaining = elapsed / this_fit * (total - done) if this_fit > 0 else float("nan")
        shown = " ".join(f"{k}={float(v):.4g}" for k, v in values)
        return (f"{done}/{total} steps ({100 * done / total:.0f}%) {shown} elapsed {_clock(elapsed)} "
                f"eta {_clock(remaining)}")

    def on_train_end(self, logs=None):
        if self.progbar is not None:
            self.progbar.update(self.progbar._seen_so_far, finalize=True)
        elif self._last_line is not None:
            print(self._last_line, flush=True)


class _ContinuedProgbar(keras.utils.Progbar):
    """A `keras.utils.Progbar` that counts from `offset` steps already done (a resumed run) and estimates the
    remaining time from the steps done since."""

    def __init__(self, target: int, offset: int, **kwargs):
        super().__init__(target, **kwargs)
        self.offset = offset

    def _estimate_step_duration(self, current, now):
        return super()._estimate_step_duration(current - self.offset, now)


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)


class TensorBoard(Callback):
    """Writes every numeric log entry as a `tf.summary` scalar against total env steps.

    Args:
        log_dir: directory of the event files.
    """

    def __init__(self, log_dir: str):
        super().__init__()
        try:
            os.makedirs(log_dir, exist_ok=True)
        except OSError as error:
            raise ValueError(f"TensorBoard log_dir {log_dir!r} cannot be a directory of event files "
                             f"({error.strerror or error}); choose a directory path you can write to.") from None
        self.log_dir = log_dir
        self.writer = None

    def on_train_begin(self, logs=None):
        self.writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        step = int(logs.get("total_steps", epoch))
        with self.writer.as_default(step=step):
            for key, value in logs.items():
                if _is_number(value) and math.isfinite(float(value)):
                    tf.summary.scalar(key, float(value))
        self.writer.flush()

    def on_train_end(self, logs=None):
        if self.writer is not None:
            self.writer.close()


class CSVLogger(Callback):
    """Appends one row per iteration to a CSV file (continuing an existing one on resume).

    Args:
        filename: the CSV path.
    """

    def __init__(self, filename: str):
        super().__init__()
        self.filename = filename
        self.columns = None

    def on_train_begin(self, logs=None):
        """Continues an existing log, dropping rows newer than the agent (left by a killed run)."""
        if not (os.path.exists(self.filename) and os.path.getsize(self.filename) > 0):
            return
        with open(self.filename, newline="") as file:
            rows = list(csv.reader(file))
        self.columns = rows[0]
        if "total_steps" not in self.columns:
            return
        column = self.columns.index("total_steps")
        kept = [row for row in rows[1:] if row and float(row[column]) <= self.agent.total_steps]
        if len(kept) != len(rows) - 1:
            staging = f"{self.filename}.partial"
            with open(staging, "w", newline="") as file:
                csv.writer(file).writerows([self.columns, *kept])
            os.replace(staging, self.filename)

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: v for k, v in (logs or {}).items() if _is_number(v)}
        if self.columns is None:
            self.columns = ["iteration", *sorted(logs)]
            with open(self.filename, "w", newline="") as file:
                csv.writer(file).writerow(self.columns)
        added = sorted(set(logs) - set(self.columns))
        if added:  # a metric that starts later (an evaluation every N iterations): earlier rows leave it empty
            self._add_columns(added)
        row = {"iteration": epoch, **logs}
        with open(self.filename, "a", newline="") as file:
            csv.writer(file).writerow([row.get(column, "") for column in self.columns])
            file.flush()
            os.fsync(file.fileno())


    def _add_columns(self, added: list[str]) -> None:
        """Rewrites the log with `added` columns appended (written beside it, then renamed over it)."""
        with open(self.filename, newline="") as file:
            rows = list(csv.reader(file))[1:]
        self.columns = [*self.columns, *added]
        staging = f"{self.filename}.partial"
        with open(staging, "w", newline="") as file:
            csv.writer(file).writerows([self.columns, *(row + [""] * len(added) for row in rows)])
            file.flush()
            os.fsync(file.fileno())
        os.replace(staging, self.filename)


class Checkpoint(Callback):
    """Saves the agent periodically (by iterations and/or wall-clock time) and at the end.

    Args:
        directory: the checkpoint directory (a `tf.train.CheckpointManager` keeps
            the newest `max_to_keep`).
        every: iterations between checkpoints, or None.
        seconds: minimum seconds between checkpoints, or None.
        max_to_keep: checkpoints kept on disk.
    """

    def __init__(self, directory: str, every: int | None = 10, seconds: float | None = None,
                 max_to_keep: int = 3):
        super().__init__()
        if every is not None:
            every = positive_int("Checkpoint every (iterations between checkpoints, or None)", every)
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, numbers.Real)
                                    or not math.isfinite(seconds) or seconds <= 0):
            raise ValueError(f"Checkpoint seconds={seconds!r} must be a positive finite number or None.")
        max_to_keep = positive_int("Checkpoint max_to_keep", max_to_keep)
        self.directory = directory
        self.every = every
        self.seconds = seconds
        self.max_to_keep = max_to_keep
        self._last_save = 0.0

    def on_train_begin(self, logs=None):
        self._last_save = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        due_iterations = self.every is not None and (epoch + 1) % self.every == 0
        due_time = self.seconds is not None and time.monotonic() - self._last_save >= self.seconds
        if due_iterations or due_time:
            self.agent.save(self.directory, max_to_keep=self.max_to_keep)
            self._last_save = time.monotonic()

    def on_train_end(self, logs=None):
        self.agent.save(self.directory, max_to_keep=self.max_to_keep)


class EarlyStopping(Callback):
    """Stops training once the monitored log value reaches a threshold.

    Args:
        threshold: the value to reach.
        monitor: the log key watched (default: mean episode return).
    """

    def __init__(self, threshold: float, monitor: str = "episode_return"):
        super().__init__()
        self.threshold = threshold
        self.monitor = monitor

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and _is_number(value) and value >= self.threshold:
            self.agent.stop_training = True


class Evaluation(Callback):
    """Evaluates the agent every `every` iterations; adds `eval_mean_return` (and std) to the logs.

    Args:
        env: the evaluation env (id or `Env`; a fresh one, not the training env).
        every: iterations between evaluations.
        episodes: episodes per evaluation.
        deterministic: act with the distribution's mode.
        stop_at: optionally stop training once the evaluation mean reaches this.
    """

    adds_metrics = ("eval_mean_return", "eval_std_return")

    def __init__(self, env, every: int = 10, episodes: int = 5, deterministic: bool = True,
                 stop_at: float | None = None):
        super().__init__()
        if stop_at is not None and not (isinstance(stop_at, numbers.Real) and math.isfinite(stop_at)):
            raise ValueError(f"Evaluation stop_at must be a finite number or None, got {stop_at!r}.")
        self.env = env
        self.every = positive_int("Evaluation every", every)
        self.episodes = positive_int("Evaluation episodes", episodes)
        self.deterministic = deterministic
        self.stop_at = stop_at

    def on_train_begin(self, logs=None):
        """Checks the evaluation env against the agent before the first iteration, not at the first evaluation."""
        from tfpg.inference import evaluation_env

        if self.agent.built:
            with evaluation_env(self.env, None, "check") as (single, _):
                self.agent.build(single.observation_space, single.action_space)  # refuses other spaces

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        result = self.agent.evaluate(self.env, episodes=self.episodes, deterministic=self.deterministic)
        if logs is not None:
            logs["eval_mean_return"] = result["mean_return"]
            logs["eval_std_return"] = result["std_return"]
        if self.stop_at is not None and result["mean_return"] >= self.stop_at:
            self.agent.stop_training = True
