"""What does this unit do? (issue #13) — the unit page, importance of every unit of a
layer, linear probes per layer, a 2-D map of a layer and feature visualisation, for
the open model and its evaluation data.

:class:`UnitStudy` is made by the session for each opened model + dataset and holds the
per-layer indices it built; everything reads the evaluator's cached unablated layer
outputs, so a unit page costs one pass over a layer once, and nothing after.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from core.ablation import Ablation
from core.analysis.evaluate import EvalResult, Evaluator, Sweep
from core.analysis.unit_index import UnitIndex, build_index, group_means, histogram
from core.datasets import Dataset
from core.errors import InputError
from core.files.row_pictures import RowPictures
from core.jobs import CancelToken, report
from core.kinds import ModelKind
from core.model import LayerInfo, ModelAdapter
from core.unit_values import (ExampleStrip, FeatureVis, LayerMap, ProbeReport, UnitEffect,
                              UnitPage)

#: Cap on the rows a layer map sends to the window (it never holds a whole dataset).
MAP_POINTS = 3000


def _frozen(arr: np.ndarray, dtype=None) -> np.ndarray:
    out = np.array(arr, dtype=dtype, copy=True)
    out.setflags(write=False)
    return out


class UnitStudy:
    """The unit-level analyses of one adapter on one dataset.

    ``evaluate`` is the session's (it adds the dead-unit labels); ``dead(site)`` gives the
    units of a site that never fire, or ``()``.
    """

    def __init__(self, adapter: ModelAdapter, dataset: Dataset, evaluator: Evaluator,
                 evaluate: Callable[..., EvalResult],
                 dead: Callable[[str, Optional[CancelToken]], tuple]) -> None:
        self.adapter, self.dataset, self.evaluator = adapter, dataset, evaluator
        self._evaluate, self._dead = evaluate, dead
        self._layers = {info.name: info for info in adapter.layers()}
        self._indices: dict[str, UnitIndex] = {}
        #: (site, unit) -> effect: Back / Next over visited units repaint at once.
        self._effects: dict[tuple[str, int], Optional[UnitEffect]] = {}
        self._rows: Optional[RowPictures] = None

    # --- which site a unit lives on -------------------------------------------------
    def unit_site(self, site: str) -> LayerInfo:
        """The layer whose units a click on ``site`` means: an attention module or its
        pattern means its heads."""
        info = self._layers.get(site)
        if info is None:
            raise InputError(f"The model has no layer named {site!r}.")
        if info.heads_site and info.heads_site in self._layers:
            return self._layers[info.heads_site]
        if info.n_units == 0:
            raise InputError(f"{site} has no units to study.")
        return info

    def _unit(self, site: str, unit: int) -> LayerInfo:
        info = self.unit_site(site)
        if not 0 <= unit < info.n_units:
            raise InputError(f"{info.name} has {info.n_units} {info.unit_name}s "
                             f"(0–{info.n_units - 1}); there is no {info.unit_name} {unit}.")
        return info

    def _valid(self) -> Optional[np.ndarray]:
        if self.dataset.kind.classifies or self.dataset.pad_id is None:
            return None
        return np.asarray(self.dataset.inputs) != self.dataset.pad_id

    def index(self, site: str, token: Optional[CancelToken] = None) -> UnitIndex:
        """Every unit's peak on every example of ``site`` (built once per model + data)."""
        info = self.unit_site(site)
        if info.name not in self._indices:
            acts = self.evaluator.site_output(info.name, token)
            self._indices[info.name] = build_index(info.name, acts, info, self._valid())
        return self._indices[info.name]

    # --- the unit page --------------------------------------------------------------
    def page(self, site: str, unit: int, k: int = 16,
             token: Optional[CancelToken] = None) -> UnitPage:
        info = self._unit(site, unit)
        index = self.index(info.name, token)
        report(token, 0.6, f"{info.name} {info.unit_name} {unit}: examples")
        values = index.peak[:, unit]
        counts, edges = histogram(values)
        top = self._strip(index, unit, index.ranked(unit, k), token)
        bottom = self._strip(index, unit, index.ranked(unit, k, lowest=True), token)
        means, names, label = self._group_means(index, unit)
        report(token, 0.8, f"{info.name} {info.unit_name} {unit}: effect on the output")
        if (info.name, unit) not in self._effects:
            self._effects[info.name, unit] = self._effect(info, unit, token)
        effect = self._effects[info.name, unit]
        weights = getattr(self.adapter, "unit_weights", None)
        drawn = weights(info.name, unit) if weights is not None else None
        note = "" if drawn is not None else self._weights_note(info, weights is not None)
        return UnitPage(info.name, unit, info.n_units, info.unit_name,
                        "its maximum over positions" if self._has_map(index) else "its value",
                        top, bottom, counts, edges, means, names, label, effect, drawn,
                        note, unit in self._dead(info.name, token), float(values.mean()),
                        float(values.max()))

    @staticmethod
    def _has_map(index: UnitIndex) -> bool:
        return index.maps.ndim > 2

    def _strip(self, index: UnitIndex, unit: int, chosen: np.ndarray,
               token: Optional[CancelToken]) -> ExampleStrip:
        ds = self.dataset
        base = self.evaluator.baseline_logits(token)
        where = index.where[chosen, unit]
        maps = index.maps[chosen, unit] if self._has_map(index) else None
        if ds.kind.classifies:
            labels = np.asarray(ds.labels)[chosen]
            predicted = base[chosen].argmax(axis=-1)
            pictures = _frozen(self._pictures(chosen), np.float32)
            tokens: tuple = ()
        else:
            pos = where if index.per_token else np.zeros_like(where)
            labels = np.asarray(ds.labels).reshape(len(ds), -1)[chosen, pos] \
                if np.ndim(ds.labels) == 2 else np.full(len(chosen), -1)
            predicted = base[chosen, pos].argmax(axis=-1) if base.ndim == 3 \
                else np.full(len(chosen), -1)
            pictures = None
            tokens = tuple(self._tokens(i) for i in chosen)
        return ExampleStrip(_frozen(chosen, np.int64), _frozen(index.peak[chosen, unit],
                                                               np.float32),
                            _frozen(where, np.int64), _frozen(labels, np.int64),
                            _frozen(predicted, np.int64), pictures,
                            None if maps is None else _frozen(maps, np.float32), tokens)

    def _pictures(self, chosen: np.ndarray) -> np.ndarray:
        """What a person sees of the chosen examples: the images, or bars of a row."""
        if self.dataset.display is not None:
            return self.dataset.display[chosen]
        if self._rows is None:
            self._rows = RowPictures(self.dataset.inputs)
        return self._rows(chosen)

    def _tokens(self, example: int) -> tuple[str, ...]:
        ids = np.asarray(self.dataset.inputs[example])
        if self.dataset.pad_id is not None:
            ids = ids[ids != self.dataset.pad_id]
        names = self.dataset.class_names  # the vocabulary, for token models
        return tuple(names[i] if 0 <= i < len(names) else "?" for i in ids)

    def _group_means(self, index: UnitIndex, unit: int):
        ds = self.dataset
        groups = np.asarray(ds.groups)
        if groups.ndim == 1:
            names = ds.class_names if ds.kind.classifies else ds.group_names
            label = "class" if ds.kind.classifies else ds.group_label
            labels = np.asarray(ds.labels) if ds.kind.classifies else groups
            return group_means(index.peak[:, unit], labels, len(names)), tuple(names), label
        # Per-position groups (next letter within the repeat): the unit's value at each
        # scored position, averaged per group.
        if index.per_token and index.maps.shape[2] == groups.shape[1]:
            values = index.maps[:, unit]
            return (group_means(values.reshape(-1), groups.reshape(-1), len(ds.group_names)),
                    tuple(ds.group_names), ds.group_label)
        return np.full(len(ds.group_names), np.nan), tuple(ds.group_names), ds.group_label

    def _effect(self, info: LayerInfo, unit: int,
                token: Optional[CancelToken]) -> Optional[UnitEffect]:
        direct = getattr(self.adapter, "output_weights", None)
        weights = direct(info.name, unit) if direct is not None else None
        if weights is not None and len(weights) == len(self.dataset.class_names):
            return UnitEffect("direct weights", _frozen(weights, np.float64),
                              tuple(self.dataset.class_names),
                              f"Weight from {info.unit_name} {unit} to each class's "
                              f"score (the next layer is the output layer): positive "
                              f"pushes the class up.")
        result = self._evaluate((Ablation(info.name, (unit,), "zero"),), token)
        change = 100.0 * (np.asarray(result.per_group) - np.asarray(result.baseline_per_group))
        if result.metric != "accuracy":
            change = change / 100.0
        what = "points of accuracy" if result.metric == "accuracy" else "cosine similarity"
        return UnitEffect("accuracy change", _frozen(change, np.float64),
                          tuple(result.group_names),
                          f"Change in {what} per {result.group_label} when "
                          f"{info.unit_name} {unit} is switched off (zero).")

    @staticmethod
    def _weights_note(info: LayerInfo, has_method: bool) -> str:
        if not has_method:
            return "Weights are not drawn for this kind of model file (ONNX)."
        if info.kind == "HeadOutputs" or info.heads_site:
            return ("A head's QK and OV circuits are drawn for the built-in induction "
                    "transformer, whose attention Mechscope knows the layout of; this "
                    "model's attention is laid out differently.")
        return (f"This layer ({info.kind}) has no weights of its own, and no layer with "
                f"weights feeds it unit by unit.")

    # --- importance -----------------------------------------------------------------
    def importance(self, site: str, mode: str = "zero",
                   token: Optional[CancelToken] = None) -> Sweep:
        """Each unit of ``site`` switched off alone: the score with it off."""
        info = self.unit_site(site)
        if mode not in ("zero", "mean"):
            raise InputError(f"Importance is measured with zero or mean ablation, "
                             f"not {mode!r}.")
        return self.evaluator.sweep(info.name, range(info.n_units), mode, token)

    # --- probes ---------------------------------------------------------------------
    def probes(self, token: Optional[CancelToken] = None) -> tuple[ProbeReport, ...]:
        """A logistic-regression probe per layer for each question the data can ask."""
        from core.analysis.probes import layer_rows, probe_layers

        ds = self.dataset
        if ds.kind is ModelKind.EMBEDDING:
            raise InputError("Probes predict a label from a layer; the sentence encoder's "
                             "evaluation data has no labels to predict.")
        layers = [i for i in self.adapter.layers() if i.n_units > 0]
        if ds.kind.classifies:
            def rows(site: str) -> np.ndarray:
                if site == "input":
                    return np.asarray(ds.inputs, np.float32).reshape(len(ds), -1)
                return layer_rows(self.evaluator.site_output(site, token),
                                  self._layers[site].unit_axis)

            labels = np.asarray(ds.labels)
            sites = ("input", *(i.name for i in layers))
            return (probe_layers("digit class" if ds.name.startswith("digits") else "class",
                                 sites, rows, labels, np.arange(len(ds)),
                                 tuple(ds.class_names), token=token),)
        return tuple(self._token_probes(layers, layer_rows, probe_layers, token))

    def _token_probes(self, layers, layer_rows, probe_layers, token):
        ds = self.dataset
        labels = np.asarray(ds.labels)
        valid = self._valid()
        sites = tuple(i.name for i in layers)
        scored = np.argwhere(labels >= 0)
        tasks = [("next token", scored, labels[scored[:, 0], scored[:, 1]],
                  tuple(ds.class_names))]
        if ds.name.startswith("induction"):
            # BOS, L letters, the same L letters again, then padding: position t is in
            # the repeated half when t > L. (L varies, so position alone cannot say.)
            where = np.argwhere(valid)
            where = where[where[:, 1] >= 1]
            half = (valid.sum(axis=1) - 1) // 2
            repeated = (where[:, 1] > half[where[:, 0]]).astype(np.int64)
            tasks = [("next letter", *tasks[0][1:]),
                     ("in the repeated half", where, repeated,
                      ("first copy", "repeated half"))]
        out = []
        for n, (task, positions, y, classes) in enumerate(tasks):
            def rows(site: str, positions=positions) -> np.ndarray:
                return layer_rows(self.evaluator.site_output(site, token),
                                  self._layers[site].unit_axis, positions)

            report(token, n / len(tasks), f"probes: {task}")
            out.append(probe_layers(task, sites, rows, y, positions[:, 0], classes,
                                    token=token))
        return out

    # --- the map of a layer ---------------------------------------------------------
    def layer_map(self, site: str, token: Optional[CancelToken] = None) -> LayerMap:
        """PCA of ``site``'s output over the evaluation set, one point per example (per
        position for token models), coloured by class."""
        from core.analysis.layer_map import pca_map
        from core.analysis.probes import layer_rows

        info = self._layers.get(site)
        if info is None:
            raise InputError(f"The model has no layer named {site!r}.")
        ds = self.dataset
        acts = self.evaluator.site_output(site, token)
        base = self.evaluator.baseline_logits(token)
        positions = None
        if ds.kind.classifies:
            rows = layer_rows(acts, info.unit_axis)
            labels, predicted = np.asarray(ds.labels), base.argmax(axis=-1)
            indices, names = np.arange(len(ds)), tuple(ds.class_names)
        else:
            positions = np.argwhere(self._valid())
            rows = layer_rows(acts, info.unit_axis, positions)
            indices = positions[:, 0]
            if np.ndim(ds.groups) == 2:
                labels = np.asarray(ds.groups)[positions[:, 0], positions[:, 1]]
                names = tuple(ds.group_names)
            else:
                labels, names = np.asarray(ds.groups)[indices], tuple(ds.group_names)
            predicted = base[positions[:, 0], positions[:, 1]].argmax(axis=-1) \
                if base.ndim == 3 else np.full(len(indices), -1)
        report(token, 0.7, f"projecting {site}")
        coords, kept, explained = pca_map(rows, MAP_POINTS)
        return LayerMap(site, "PCA", _frozen(coords, np.float32),
                        _frozen(indices[kept], np.int64), _frozen(labels[kept], np.int64),
                        _frozen(predicted[kept], np.int64), _frozen(explained, np.float64),
                        names, None if positions is None else _frozen(positions[kept],
                                                                      np.int64))

    # --- feature visualisation ------------------------------------------------------
    def feature_visualisation(self, site: str, unit: int, steps: int = 256,
                              token: Optional[CancelToken] = None) -> FeatureVis:
        """An input optimised to excite ``unit`` (image models with weights)."""
        info = self._unit(site, unit)
        visualise = getattr(self.adapter, "visualise", None)
        if self.dataset.kind is ModelKind.VALUES:
            raise InputError("Feature visualisation optimises an image; this model reads "
                             "rows of numbers: its most active examples show what drives "
                             "the unit.")
        if self.dataset.kind is not ModelKind.IMAGE:
            raise InputError("Feature visualisation optimises an image; this model reads "
                             "tokens, whose inputs cannot be nudged a little.")
        if visualise is None:
            raise InputError("Feature visualisation needs the model's gradients; this "
                             "kind of model file (ONNX) does not give them.")
        inputs = np.asarray(self.dataset.inputs, np.float32)
        lo, hi = float(inputs.min()), float(inputs.max())
        acts = self.evaluator.site_output(info.name, token)
        per_example = np.moveaxis(acts, info.unit_axis + 1, 1)[:, unit]
        dataset_max = float(per_example.reshape(len(acts), -1).mean(axis=1).max())
        # The penalties keep the picture readable; where they hold a unit below its best
        # example (a linear conv1 channel, whose mean only grows with brightness), a
        # second run with them ten times weaker says whether the dataset can be beaten.
        for strength in (1.0, 0.1):
            image, trace = visualise(info.name, unit, steps=steps, value_range=(lo, hi),
                                     token=token, scale=strength * (abs(dataset_max) or 1.0))
            image = np.asarray(image, np.float32)
            # Measured on the returned input, without the jitter used while optimising.
            out = self.adapter.run(image[None], capture=(info.name,)).activations[info.name]
            activation = float(np.moveaxis(out, info.unit_axis + 1, 1)[0, unit].mean())
            if activation > dataset_max:
                break
        penalties = "an L2 pull towards the background" if strength == 1.0 else \
            "a weak L2 pull towards the background"
        shown = image.reshape(-1, *image.shape[-2:])
        picture = (shown.mean(axis=0) - lo) / max(hi - lo, 1e-12)
        return FeatureVis(info.name, unit, _frozen(image, np.float32),
                          _frozen(np.clip(picture, 0, 1), np.float32), activation,
                          dataset_max, _frozen(trace, np.float32), steps,
                          f"jitter, {penalties}, total variation, half-resolution "
                          f"pixels, inputs kept in the data's range")

