"""What a lesson's training reports after each step: plain data, no torch, so the GUI
can draw it (and the value crosses the process boundary as is)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

#: Learning rates the lessons start with (each trainer's default).
DEFAULT_LR = {"linear": 0.05, "logistic": 0.5, "mlp": 0.01}


@dataclass(frozen=True)
class Snapshot:
    """The state of a training run after ``step`` updates.

    Attributes
    ----------
    trainer : str
    step : int
    lr : float
    seed : int
    losses : (step + 1,) float64 ndarray
        Training loss before the first step and after each one.
    params, grads : dict of str to ndarray
        Every parameter and its latest gradient (zeros before the first step).
    metric : float or None
        Accuracy (classification) on ``metric_on``; None for regression.
    metric_on : str
    data : dict
        What the plots need: data points, the fitted line or the decision-boundary grid,
        or the hidden activations of one input.
    """

    trainer: str
    step: int
    lr: float
    seed: int
    losses: np.ndarray
    params: dict
    grads: dict
    metric: Optional[float] = None
    metric_on: str = ""
    data: dict = field(default_factory=dict)
