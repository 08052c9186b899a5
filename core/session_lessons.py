"""The session's lesson side (issue #5): lessons 1–3 train step by step in the compute
process; the trained network opens in the workbench. A mixin of
:class:`core.session.Session`."""

from __future__ import annotations

from typing import Optional

from core.errors import InputError, MechscopeError
from core.jobs import CancelToken


class LessonsMixin:
    """Training the lesson models."""

    def lesson_start(self, trainer: str, seed: int = 0, lr: Optional[float] = None,
                     token: Optional[CancelToken] = None):
        """Start (or restart) a lesson's training; returns its first Snapshot."""
        from core.lessons.training import TRAINERS

        if trainer not in TRAINERS:
            raise InputError(f"There is no lesson trainer {trainer!r}.")
        self._trainer = TRAINERS[trainer](seed=seed, lr=lr)
        return self._trainer.snapshot()

    def lesson_step(self, n: int = 1, lr: Optional[float] = None, sample: int = 0,
                    token: Optional[CancelToken] = None):
        """``n`` gradient steps of the running lesson (at ``lr`` if given)."""
        trainer = getattr(self, "_trainer", None)
        if trainer is None:
            raise MechscopeError("Start a lesson first.")
        if lr is not None and lr != trainer.lr:
            trainer.set_lr(lr)
        trainer.step(n, token)
        return trainer.snapshot(sample)

    def open_lesson_model(self, token: Optional[CancelToken] = None):
        """Open the lesson-3 network, as trained so far, in the workbench."""
        import copy

        from core.adapters.torch_adapter import TorchAdapter

        trainer = getattr(self, "_trainer", None)
        if trainer is None or trainer.name != "mlp":
            raise MechscopeError("Train the one-hidden-layer network (lesson 3) first.")
        adapter = TorchAdapter(copy.deepcopy(trainer.model), "lesson_mlp", (1, 16, 16))
        title = f"Lesson 3 network after {trainer.steps} steps (16 hidden neurons)"
        return self._install(adapter, _datasets()["digits"](), title, "fc1", token)


def _datasets():
    from core.session import DATASETS  # the registry lives with the session

    return DATASETS
