"""The lesson being trained (issue #5): one object that owns the running trainer, so
the session holds no hidden lesson state of its own."""

from __future__ import annotations

import copy
from typing import Optional

from core.errors import InputError, MechscopeError
from core.jobs import CancelToken
from core.lessons.snapshot import Snapshot


class LessonRunner:
    """Starts, steps and hands out the trained network of lessons 1–3."""

    def __init__(self) -> None:
        self._trainer = None

    def start(self, trainer: str, seed: int = 0, lr: Optional[float] = None) -> Snapshot:
        """Start (or restart) ``trainer``; its first snapshot (:class:`InputError` for
        an unknown trainer)."""
        from core.lessons.training import TRAINERS

        if trainer not in TRAINERS:
            raise InputError(f"There is no lesson trainer {trainer!r}.")
        self._trainer = TRAINERS[trainer](seed=seed, lr=lr)
        return self._trainer.snapshot()

    def step(self, n: int = 1, lr: Optional[float] = None, sample: int = 0,
             token: Optional[CancelToken] = None) -> Snapshot:
        """``n`` gradient steps (at ``lr`` if given) and the snapshot after them."""
        trainer = self._trainer
        if trainer is None:
            raise MechscopeError("Start a lesson first.")
        if lr is not None and lr != trainer.lr:
            trainer.set_lr(lr)
        trainer.step(n, token)
        return trainer.snapshot(sample)

    def trained_mlp(self):
        """A copy of the lesson-3 network as trained so far, and its step count."""
        trainer = self._trainer
        if trainer is None or trainer.name != "mlp":
            raise MechscopeError("Train the one-hidden-layer network (lesson 3) first.")
        return copy.deepcopy(trainer.model), trainer.steps
