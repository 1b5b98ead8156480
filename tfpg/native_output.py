"""Holding back what native libraries print straight to the process's stderr while TensorFlow starts.

TensorFlow's C++ libraries log to file descriptor 2 before Python's logging
settings (or `TF_CPP_MIN_LOG_LEVEL`) can reach them: each library prints a
oneDNN notice and a CUDA-driver notice as it loads, and the first device
set-up on a machine without a GPU prints an error-level `failed call to
cuInit`. `import tfpg` loads TensorFlow inside `held_back()`, and the launchers
set up the devices inside it too, and an agent runs its first acting call
inside it (the graph optimisation of that call is when oneDNN prints that
it supports int32 only with AVX-512); what was held back is kept
(`held_messages()`) and printed by the launchers' `--tf_logs`. Setting the
environment variable `TFPG_TF_LOGS=1` turns the holding off.

This module imports nothing of tfpg or TensorFlow: `tfpg/__init__.py` uses it
before TensorFlow is loaded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile

_held: list[str] = []
_devices_started = False


def holding_enabled() -> bool:
    """Whether output is held back (unless `TFPG_TF_LOGS=1` is set)."""
    return os.environ.get("TFPG_TF_LOGS", "") not in ("1", "true", "yes")


@contextlib.contextmanager
def held_back():
    """Sends what is written to file descriptor 2 inside the block to a temporary file.

    The text is kept for `held_messages()`. If the block raises, it is written to
    stderr before the exception propagates, so nothing that explains a failure
    is hidden.
    """
    if not holding_enabled():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode(errors="replace")
            _held.append(text)
            if failed:
                sys.stderr.write(text)
                sys.stderr.flush()


def held_messages() -> str:
    """Everything held back so far, in order."""
    return "".join(_held)


def release() -> None:
    """Writes what was held back to stderr (once)."""
    sys.stderr.write(held_messages())
    sys.stderr.flush()
    _held.clear()


def start_devices_quietly(show: bool = False) -> None:
    """Sets up TensorFlow's devices inside `held_back()` (once per process); with `show`, prints everything
    held back so far."""
    global _devices_started
    if not _devices_started:
        with held_back():
            import tensorflow as tf

            tf.config.list_logical_devices()
        _devices_started = True
    if show:
        release()


class _DropMessages(logging.Filter):
    """Drops the records whose message starts with `prefix` (equal filters compare equal, so one is added once)."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)

    def __eq__(self, other) -> bool:
        return isinstance(other, _DropMessages) and other.prefix == self.prefix

    def __hash__(self) -> int:
        return hash(self.prefix)


def drop_log_messages(logger_name: str, prefix: str) -> None:
    """Drops one message of a library's Python logger: the records whose message starts with `prefix`.

    The logger's level and every other record are left as the program set them.
    """
    logger = logging.getLogger(logger_name)
    if _DropMessages(prefix) not in logger.filters:
        logger.addFilter(_DropMessages(prefix))


def hide_checkpoint_timing() -> None:
    """Drops the INFO line TensorFlow's checkpoint saver logs on every save ("Sharding callback duration").

    It goes through absl's logger, which a program under `absl.app.run` shows at INFO.
    """
    drop_log_messages("absl", "Sharding callback duration")
