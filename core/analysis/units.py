"""Which units never fire (issue #12): a unit whose output after its activation
function is 0 on every example of the dataset is dead — switching it off, zero or mean,
cannot change anything downstream, and the window should say so instead of showing
"+0.0 points" with no explanation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from core.model import LayerInfo

#: Layer kinds (torch modules, ONNX ops) whose output is exactly 0 when the unit is
#: "off", so a unit that is 0 on every input never fires.
RECTIFIERS = frozenset({"ReLU", "ReLU6", "Relu", "Clip"})


@dataclass(frozen=True)
class UnitActivity:
    """How often each unit of ``site`` fires, read after ``activation``.

    ``active`` (U,) float32: the fraction of examples on which the unit is above 0 at
    some position; ``dead``: the units with ``active == 0``.
    """

    site: str
    activation: str
    active: np.ndarray
    dead: tuple[int, ...]


def activation_after(layers: Sequence[LayerInfo], site: str) -> Optional[LayerInfo]:
    """The rectifier that ``site``'s units pass through: the site itself, or the next
    layer with the same parent and output shape; ``None`` if there is none."""
    order = [info.name for info in layers]
    if site not in order:
        return None
    here = layers[order.index(site)]
    if here.kind in RECTIFIERS:
        return here
    following = layers[order.index(site) + 1] if order.index(site) + 1 < len(layers) else None
    if following is not None and following.kind in RECTIFIERS and \
            following.parent == here.parent and following.output_shape == here.output_shape:
        return following
    return None


def unit_activity(site: str, activation: LayerInfo, outputs: np.ndarray) -> UnitActivity:
    """:class:`UnitActivity` from ``outputs`` (N, *shape) of the rectifier."""
    moved = np.moveaxis(outputs, activation.unit_axis + 1, 1)
    fires = (moved.reshape(moved.shape[0], moved.shape[1], -1) > 0).any(axis=2)
    active = fires.mean(axis=0).astype(np.float32)
    active.setflags(write=False)
    return UnitActivity(site, activation.name, active,
                        tuple(int(u) for u in np.flatnonzero(active == 0)))
