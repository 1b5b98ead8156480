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


class EvaluationTimeout(TimeoutError):
    """An evaluation ran past its time limit; holds the returns and lengths of the episodes it finished.

    Attributes:
        returns: returns of the finished episodes.
        lengths: their lengths.
        episode: the index of the episode in progress when time ran out.
        steps: the steps that episode had taken.
        seconds: the limit.
    """

    def __init__(self, returns: list, lengths: list, episode: int, steps: int, seconds: float):
        self.returns, self.lengths, self.episode, self.steps, self.seconds = returns, lengths, episode, steps, seconds
        super().__init__(
            f"The evaluation ran past its limit of {seconds:g} s in episode {episode + 1} (at its step {steps}), "
            f"after {len(returns)} finished episode(s). Its episodes run long: the policy may not end them (an "
            f"untrained policy that stays alive until the time limit), or each step is slow. Evaluate fewer "
            f"episodes, or allow more time."
        )
