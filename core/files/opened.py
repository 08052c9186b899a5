"""What opening a model file builds — :class:`Opened` — and the trial run every model
passes before it is installed; apart from :mod:`core.files.opening` so that the
openers it hands files to (:mod:`core.files.own_model`) need not import it back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from core.datasets import Dataset
from core.jobs import CancelToken, report
from core.model import ModelAdapter


@dataclass(frozen=True)
class Opened:
    """A model ready to install, with its evaluation data and, for a model of another
    input size, the input spec its images are converted with."""

    adapter: ModelAdapter
    dataset: Dataset
    title: str
    default_layer: str
    spec: Optional[object] = None
    #: How the model runs, for the status line (:attr:`core.api.ModelInfo.note`).
    note: str = ""


def trial(build: Callable[[], ModelAdapter], dataset: Dataset, name: str,
          token: Optional[CancelToken]) -> None:
    """Build and run the model on two examples of ``dataset`` in a child process
    (:func:`core.adapters.trial.trial_run`); raises ``ModelLoadError`` if it fails."""
    from core.adapters.trial import trial_run

    report(token, 0.5, f"trying {name} on two examples…")
    trial_run(build, np.asarray(dataset.inputs[:2]), name=name)
