"""Ablations as plain data: which units of which site, replaced how.

Adapters apply them; the GUI shows them; a session can save and re-apply them so
numbers reproduce.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal

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
