"""Errors that reach the user as one line plus a hint.

Every error emokit raises on purpose is an :class:`EmokitError`: the CLI prints its
message and hint on one line each and exits with ``exit_code``; the full traceback is
shown only when ``EMOKIT_TRACEBACK=1``.
"""

from __future__ import annotations


class EmokitError(Exception):
    """An error with a message for the user and a hint saying what to do."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


class MediaError(EmokitError):
    """A media file that cannot be decoded or holds no usable signal."""


class CorpusError(EmokitError):
    """A corpus folder, manifest or file name that does not fit the expected layout."""


class PluginError(EmokitError):
    """A plugin that cannot be loaded, or registers something invalid."""


class UnknownNameError(EmokitError):
    """A pipeline, component or corpus name that nobody registered."""


class RegistryError(EmokitError):
    """The registry database or its artifact store cannot be used as asked."""


class ArtifactCorruptedError(RegistryError):
    """An artifact whose bytes no longer match the SHA-256 recorded for it."""


class SchemaTooNewError(RegistryError):
    """A registry written by a newer emokit than this one."""


class WeightsError(EmokitError):
    """A checkpoint that cannot be read, or that does not fit the architecture."""


class EvaluationError(EmokitError):
    """A run that cannot be evaluated (unfinished, or without predictions)."""


class CompareError(EmokitError):
    """Runs that cannot be compared (too few, unfinished, or not on the same clips and folds)."""
