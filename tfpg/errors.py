"""Exceptions of tfpg."""


class NonFiniteError(FloatingPointError):
    """NaN or infinity in env data or in an update; raised before anything non-finite is kept."""


class EnvError(RuntimeError):
    """An env copy raised an exception, or the worker process running it died, during collection."""


class EnvCopyError(RuntimeError):
    """An exception raised inside one env copy, labelled with the copy's index.

    Raised by the wrapper tfpg puts around every env copy it creates; built
    from one message string so it survives the trip from an async worker
    process.
    """


class DamagedCheckpointError(ValueError):
    """A checkpoint's files are unreadable, truncated or corrupted (other checkpoints of its directory may be intact)."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (a full disk, a file-size limit, a vanished directory).

    The checkpoints written before are intact: TensorFlow writes each under a temporary name, and tfpg
    removes what a failed write left behind."""
