"""Exceptions of zspace.

Every subclass of :class:`ZSpaceError` is *bad input* (a wrong path, an impossible config, a checkpoint of
another architecture): the command line prints its message on one line and exits with code 2. Errors that
happen to good input during work (a diverging training run) are not ``ZSpaceError``.
"""


class ZSpaceError(Exception):
    """Bad input: the message names the problem on one line."""


class ConfigError(ZSpaceError):
    """A config key that does not exist or a value that cannot work."""


class DataError(ZSpaceError):
    """A missing, empty, malformed or unreadable data source."""


class CheckpointError(ZSpaceError):
    """A run folder or weights file that is missing, truncated or of another architecture."""


class TrainingDiverged(RuntimeError):
    """The loss became non-finite; the last good checkpoint is left untouched."""


class DistributedFailure(RuntimeError):
    """Another training process (torchrun/DDP) failed or vanished; the last checkpoint is intact."""
