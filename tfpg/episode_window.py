"""The last finished episodes, whose mean return `fit` logs, kept in a variable so checkpoints hold them."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


class EpisodeWindow(tf.Module):
    """Return and length of the newest `size` finished episodes (oldest first).

    A checkpoint holds the window, so the mean return a resumed run logs
    continues from the same episodes instead of restarting from its first few.

    Args:
        size: episodes kept.
    """

    def __init__(self, size: int = 100):
        super().__init__(name="episode_window")
        self.size = size
        # rows of (return, length); unused rows are NaN
        self.records = tf.Variable(np.full((size, 2), np.nan), trainable=False, name="records")

    def episodes(self) -> list[tuple[float, float]]:
        """The kept episodes as (return, length) pairs, oldest first."""
        records = self.records.numpy()
        return [(float(r), float(n)) for r, n in records[~np.isnan(records[:, 0])]]

    def add(self, returns, lengths) -> None:
        """Appends finished episodes, dropping the oldest beyond `size`."""
        kept = (self.episodes() + [(float(r), float(n)) for r, n in zip(returns, lengths)])[-self.size:]
        records = np.full((self.size, 2), np.nan)
        if kept:
            records[:len(kept)] = kept
        self.records.assign(records)

    def means(self) -> dict:
        """`episode_return` and `episode_length`: the means over the kept episodes (NaN before one has ended)."""
        kept = self.episodes()
        if not kept:
            return {"episode_return": float("nan"), "episode_length": float("nan")}
        returns, lengths = zip(*kept)
        return {"episode_return": float(np.mean(returns)), "episode_length": float(np.mean(lengths))}
