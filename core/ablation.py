"""Ablations as plain data: which units of which site, replaced how.

Adapters apply them; the GUI shows them; a session can save and re-apply them so
numbers reproduce.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal, Mapping, Optional, Sequence

import numpy as np

from core.errors import AblationError

Mode = Literal["zero", "mean", "skip", "scale"]
MODES: tuple[Mode, ...] = ("zero", "mean", "skip", "scale")
#: Modes that act on units; "skip" and "scale" act on the whole layer.
UNIT_MODES = ("zero", "mean")


@dataclass(frozen=True)
class Ablation:
    """Switch off ``units`` of the output of ``site``.

    Attributes
    ----------
    site : str
        Capture-site name (a module path such as ``"conv2"``).
    units : tuple of int
        Unit indices along the site's unit axis (channels for conv, neurons for linear).
    mode : {"zero", "mean", "skip", "scale"}
        ``zero`` multiplies the units by 0; ``mean`` replaces them with their mean over
        the evaluation dataset (per position), which keeps the layer's typical output
        and so isolates the information the unit carries. The whole-layer modes ignore
        ``units``: ``skip`` passes the layer's input straight through (only where input
        and output shapes match), ``scale`` multiplies the layer's weights by ``value``
        (a parameter change, as in "what if this layer were half as strong?").
    value : float
        The factor for ``scale``.
    """

    site: str
    units: tuple[int, ...] = ()
    mode: Mode = "zero"
    value: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"Unknown ablation mode {self.mode!r}; use one of {MODES}.")
        units = () if self.mode not in UNIT_MODES else self.units
        object.__setattr__(self, "units", tuple(sorted({int(u) for u in units})))
        object.__setattr__(self, "value", float(self.value))

    @property
    def whole_layer(self) -> bool:
        return self.mode not in UNIT_MODES

    def label(self) -> str:
        if self.mode == "skip":
            return f"{self.site}: skipped"
        if self.mode == "scale":
            return f"{self.site}: weights ×{self.value:g}"
        units = ",".join(str(u) for u in self.units)
        return f"{self.site}:{units} ({self.mode})"


def unit_mask(ablations: Iterable[Ablation], site: str, shape: Sequence[int], unit_axis: int,
              means: Optional[Mapping[str, np.ndarray]] = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """What the unit ablations of ``site`` do, as ``ablated = x * keep + fill``.

    The one place a mask is built: every adapter (torch hooks, the ONNX graph, batched
    sweeps) applies these two arrays, so all of them ablate identically.

    Parameters
    ----------
    ablations : iterable of Ablation
        Only the unit ablations of ``site`` count; where two name the same unit, the
        later one wins (as if applied one after the other).
    site : str
    shape : tuple of int
        One example's output shape without the batch axis, e.g. ``(C, H, W)``; for a
        sequence shorter than the dataset's, its actual ``(T, F)``.
    unit_axis : int
        Axis of ``shape`` that indexes units.
    means : mapping of str to ndarray, optional
        ``site -> (*full_shape)`` dataset means, needed for ``mean`` ablations; cropped
        to ``shape`` (a shorter sequence takes the first positions).

    Returns
    -------
    keep : float32 ndarray
        Shape ``shape`` with 1 everywhere except ``n_units`` at ``unit_axis``: 0 for
        ablated units, 1 for the others.
    fill : float32 ndarray
        What ablated units become: zeros shaped like ``keep`` when no unit is
        mean-ablated, else ``(*shape)`` holding the mean on ablated units, 0 elsewhere.

    Raises
    ------
    AblationError
        A unit that does not exist, or a mean ablation without a known mean.
    """
    shape = tuple(int(n) for n in shape)
    n_units = shape[unit_axis]
    keep_shape = tuple(n if i == unit_axis else 1 for i, n in enumerate(shape))
    keep = np.ones(n_units, np.float32)
    fill: Optional[np.ndarray] = None
    for abl in ablations:
        if abl.site != site or abl.whole_layer or not abl.units:
            continue
        bad = [u for u in abl.units if not 0 <= u < n_units]
        if bad:
            raise AblationError(f"{site} has {n_units} units (0–{n_units - 1}); unit "
                                f"{bad[0]} does not exist.")
        units = list(abl.units)
        keep[units] = 0
        # A replacement per mode; a per-example one (resampling) would give fill a
        # batch axis, which ``x * keep + fill`` already broadcasts.
        index = tuple(units if i == unit_axis else slice(None) for i in range(len(shape)))
        if abl.mode == "mean":
            if fill is None:
                fill = np.zeros(shape, np.float32)
            fill[index] = _mean(site, shape, means)[index]
        elif fill is not None:
            fill[index] = 0
    keep = keep.reshape(keep_shape)
    return keep, np.zeros(keep_shape, np.float32) if fill is None else fill


def _mean(site: str, shape: tuple[int, ...], means: Optional[Mapping]) -> np.ndarray:
    mean = (means or {}).get(site)
    if mean is None:
        raise AblationError(f"No dataset mean is known for {site}; cannot mean-ablate it.")
    mean = np.asarray(mean, np.float32)
    if mean.ndim == len(shape):
        mean = mean[tuple(slice(0, n) for n in shape)]
    if mean.shape != shape:
        raise AblationError(f"The dataset mean of {site} has shape {mean.shape}, not the "
                            f"layer's {shape}; re-open the model to recompute it.")
    return mean


def sweep_masks(site: str, units: Sequence[int], mode: Mode, shape: Sequence[int],
                unit_axis: int, means: Optional[Mapping[str, np.ndarray]] = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """One :func:`unit_mask` per unit, stacked: replica ``i`` ablates ``units[i]`` alone.

    Returns
    -------
    keep, fill : (U, *shape') float32 ndarrays
        As in :func:`unit_mask`, with the replica axis in front.
    """
    masks = [unit_mask((Ablation(site, (u,), mode),), site, shape, unit_axis, means)
             for u in units]
    keeps, fills = zip(*masks) if masks else ((), ())
    return np.stack(keeps), np.stack(fills)


def toggle(ablations: Iterable[Ablation], site: str, unit: int, mode: Mode) -> tuple[Ablation, ...]:
    """Return ``ablations`` with ``unit`` of ``site`` switched (on ↔ off).

    One :class:`Ablation` per (site, mode) is kept so the set stays small and readable.
    """
    out: list[Ablation] = []
    found = False
    for abl in ablations:
        if abl.site == site and not abl.whole_layer and unit in abl.units:
            found = True
            rest = tuple(u for u in abl.units if u != unit)
            if rest:
                out.append(Ablation(site, rest, abl.mode))
        else:
            out.append(abl)
    if not found:
        merged = False
        for i, abl in enumerate(out):
            if abl.site == site and abl.mode == mode and not abl.whole_layer:
                out[i] = Ablation(site, abl.units + (unit,), mode)
                merged = True
        if not merged:
            out.append(Ablation(site, (unit,), mode))
    return tuple(out)


def ablated_units(ablations: Iterable[Ablation], site: str) -> frozenset[int]:
    """All units of ``site`` switched off by any unit ablation."""
    return frozenset(u for a in ablations if a.site == site for u in a.units)


def with_mode(ablations: Iterable[Ablation], mode: Mode) -> tuple[Ablation, ...]:
    """The same units, all in ``mode`` (merging per site); whole-layer changes kept."""
    by_site: dict[str, set[int]] = {}
    layer_wide = [a for a in ablations if a.whole_layer]
    for abl in ablations:
        if not abl.whole_layer:
            by_site.setdefault(abl.site, set()).update(abl.units)
    return tuple(Ablation(site, tuple(units), mode) for site, units in by_site.items()) \
        + tuple(layer_wide)


def replace_layer_change(ablations: Iterable[Ablation],
                         change: Ablation) -> tuple[Ablation, ...]:
    """``ablations`` with ``change`` (a skip or scale) as the one whole-layer change of
    its site; a scale of 1 removes it."""
    rest = tuple(a for a in ablations if not (a.site == change.site and a.whole_layer))
    if change.mode == "scale" and change.value == 1.0:
        return rest
    return rest + (change,)


def parse(text: str, mode: Mode = "zero") -> Ablation:
    """Parse ``"conv2:3,5"`` (as given on the command line) into an :class:`Ablation`."""
    site, _, units = text.partition(":")
    if not site or not units:
        raise ValueError(f"Expected SITE:UNIT[,UNIT...], got {text!r}.")
    return Ablation(site.strip(), tuple(int(u) for u in units.split(",")), mode)
