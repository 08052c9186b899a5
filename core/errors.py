"""Exceptions a user can cause. Every message is written for the user: what happened,
which file or value, and what to try."""

from __future__ import annotations


class MechscopeError(Exception):
    """Base class of every error the app shows to a user as a message."""


class ModelLoadError(MechscopeError):
    """A model could not be opened (unknown name, corrupt or mismatched weights)."""


class InputError(MechscopeError):
    """An input could not be used (unreadable image, wrong shape, empty selection)."""


class AblationError(MechscopeError):
    """An ablation names a site or unit the model does not have."""


class ForwardError(InputError):
    """The user's own model raised in its forward pass (a live module of theirs): the
    ablation that made it fail is taken back, as a refused :class:`AblationError` is."""


class Cancelled(MechscopeError):
    """The job was cancelled by the user or superseded by a newer one."""

    def __init__(self, message: str = "Cancelled.") -> None:
        super().__init__(message)
