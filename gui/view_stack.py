"""ViewStack: the centre of the window — the one view that fits the selected layer."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QLayout, QStackedWidget, QWidget

from core.ablation import Ablation, ablated_units
from core.model import LayerInfo
from core.session import Capture, ModelInfo
from gui.export import export_view
from gui.views.attention_view import AttentionView
from gui.views.channel_grid import ChannelGridView
from gui.views.neuron_view import NeuronView
from gui.views.sequence_view import SequenceView


def unit_modes(ablations: tuple[Ablation, ...], site: str) -> dict[int, str]:
    """unit -> how it is switched off ("zero" or "mean"); a later ablation wins, as the
    core applies them in order."""
    modes: dict[int, str] = {}
    for abl in ablations:
        if abl.site == site and not abl.whole_layer:
            modes.update(dict.fromkeys(abl.units, abl.mode))
    return modes


class ViewStack(QStackedWidget):
    """Owns the layer views and picks one by the layer's kind of output."""

    unit_toggled = Signal(str, int)
    #: A unit's page was asked for (double-click or context menu in any view).
    unit_page_requested = Signal(str, int)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.channel_grid = ChannelGridView()
        self.neuron_view = NeuronView()
        self.sequence_view = SequenceView()
        self.attention_view = AttentionView()
        placeholder = QLabel("Click a layer in the model tree to see what its units do.")
        placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        for widget in (placeholder, self.channel_grid, self.neuron_view, self.sequence_view,
                       self.attention_view):
            self.addWidget(widget)
        for view in (self.channel_grid, self.neuron_view, self.sequence_view):
            view.unit_toggled.connect(self.unit_toggled)
        self.attention_view.head_toggled.connect(self.unit_toggled)
        for view in (self.channel_grid, self.neuron_view, self.sequence_view,
                     self.attention_view):
            view.unit_page_requested.connect(self.unit_page_requested)
        # Only the page shown may set the stack's minimum: the hidden attention view's
        # head grid and score table kept the centre 425 px tall, so the Analyse docks
        # got 140 px of a 640 px window.
        self.layout().setSizeConstraint(QLayout.SizeConstraint.SetNoConstraint)
        self.currentChanged.connect(lambda _index: self.updateGeometry())

    def minimumSizeHint(self):  # noqa: N802 (Qt override)
        current = self.currentWidget()
        return current.minimumSizeHint() if current is not None else super().minimumSizeHint()

    def show_capture(self, model: ModelInfo, info: LayerInfo, capture: Capture,
                     tokens: list[str]) -> bool:
        """Draw ``capture`` for layer ``info``; False if it holds nothing for it."""
        site = info.pattern_site if info.view == "attention" else info.name
        acts = capture.activations.get(site)
        if acts is None:
            return False
        abl = capture.ablations
        last = model.layers[-1].name == info.name
        # Units that never fire after the site's ReLU: marked so nobody ablates them
        # expecting a change (issue #12).
        marks = dict(dead=tuple(getattr(capture, "dead", {}).get(site, ())),
                     modes=unit_modes(abl, site), n_examples=model.dataset_size)
        if info.view == "attention":
            self.attention_view.set_metric(model.kind.metric)
            self.attention_view.show_patterns(site, info.heads_site, acts, tokens,
                                              ablated_units(abl, info.heads_site))
            self.setCurrentWidget(self.attention_view)
        elif info.view == "channels":
            self.channel_grid.show_channels(site, acts, ablated_units(abl, site), **marks)
            self.setCurrentWidget(self.channel_grid)
        elif info.view == "sequence":
            self.sequence_view.show_sequence(site, acts, tokens, ablated_units(abl, site),
                                             model.class_names if last else ())
            self.setCurrentWidget(self.sequence_view)
        else:
            self.neuron_view.show_neurons(site, acts, ablated_units(abl, site),
                                          model.class_names if last else (), **marks)
            self.setCurrentWidget(self.neuron_view)
        return True

    def export(self, png_path: str):
        """PNG + CSV of the current view; None when no layer is shown yet."""
        view = self.currentWidget()
        if not hasattr(view, "numbers"):
            return None
        header, rows = view.numbers()
        return export_view(view, header, rows, png_path)

    def set_stale(self, stale: bool) -> None:
        for view in (self.channel_grid, self.neuron_view, self.sequence_view,
                     self.attention_view):
            view.set_stale(stale)
