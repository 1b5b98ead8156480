"""Exceptions of tfpg."""


class NonFiniteError(FloatingPointError):
    """NaN or infinity in env data or in an update; raised before anything non-finite is kept."""
