"""UnitPages: opens "What does this unit do?" pages — fetches a unit's page from the
session on the worker, shows it in the page view, and turns the page's buttons into
workbench intent (Back/Next, Switch off/on, load an example, feature visualisation)."""

from __future__ import annotations

from functools import partial
from typing import Optional

from PySide6.QtCore import QObject, Signal, Slot

from core.ablation import ablated_units
from core.api import SessionAPI
from core.errors import MechscopeError
from core.kinds import ModelKind
from gui.views.unit_page_view import UnitPageView
from gui.workbench import Workbench
from gui.worker import UnexpectedError, Worker

PAGE_KEY = "unit page"
LOOK_KEY = "feature vis"


def unit_label(info, site: str, unit: int, n_units: int) -> str:
    """What a unit of the output layer stands for ("class 3", "token 'a'"): the last
    layer's units are the model's classes (or its vocabulary) where there are as many;
    "" for every other unit."""
    names = info.class_names
    last = bool(info.layers) and info.layers[-1].name == site
    if not last or n_units != len(names) or not 0 <= unit < len(names):
        return ""
    return f"class {names[unit]}" if info.kind.classifies else f"token '{names[unit]}'"


class UnitPages(QObject):
    """The controller of the unit page. ``shown(page)`` when a page is drawn (the
    window shows its panel), ``closed()`` when it should go away."""

    shown = Signal(object)      # core.unit_values.UnitPage
    closed = Signal()
    looked = Signal(object)     # core.unit_values.FeatureVis

    def __init__(self, session: SessionAPI, worker: Worker, workbench: Workbench,
                 view: UnitPageView, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.session, self.worker, self.workbench, self.view = session, worker, workbench, view
        self.page = None
        #: Bumped when the model or data change: older answers are for another model.
        self._generation = 0
        view.back_requested.connect(self.back)
        view.next_requested.connect(self.next)
        view.switch_requested.connect(self.toggle)
        view.close_requested.connect(self.close)
        view.look_for_requested.connect(self.look_for)
        view.example_clicked.connect(workbench.select_sample)
        workbench.ablations_changed.connect(self._on_ablations)
        workbench.model_opened.connect(self._on_model)

    # --- intent -------------------------------------------------------------------------
    @Slot(str, int)
    def open(self, site: str, unit: int) -> None:
        """Fetch and show the page of ``unit`` of ``site`` (a head of an attention layer,
        a channel, a neuron or a feature); a bad request says why in the message bar."""
        if self.workbench.info is None:
            return
        self.worker.cancel(LOOK_KEY)
        self.worker.submit(PAGE_KEY, self.session.unit_page, site, int(unit),
                           on_done=partial(self._on_page, self._generation),
                           on_error=self.workbench.report_error)

    @Slot()
    def back(self) -> None:
        if self.page is not None and self.page.unit > 0:
            self.open(self.page.site, self.page.unit - 1)

    @Slot()
    def next(self) -> None:
        if self.page is not None and self.page.unit < self.page.n_units - 1:
            self.open(self.page.site, self.page.unit + 1)

    @Slot()
    def toggle(self) -> None:
        if self.page is not None:
            self.workbench.toggle_unit(self.page.site, self.page.unit)

    @Slot()
    def close(self) -> None:
        self.worker.cancel(PAGE_KEY)
        self.worker.cancel(LOOK_KEY)
        self.page = None
        self.closed.emit()

    @Slot()
    def look_for(self) -> None:
        """Feature visualisation of the shown unit, on the worker (Cancel stops it)."""
        page = self.page
        if page is None:
            return
        self.view.show_looking("Optimising an input to excite it… (Cancel in the status "
                               "bar stops it)")
        self.worker.submit(LOOK_KEY, self.session.feature_visualisation, page.site, page.unit,
                           on_done=partial(self._on_looked, page),
                           on_error=partial(self._on_look_failed, page),
                           on_progress=partial(self._on_look_progress, page),
                           on_cancel=partial(self._on_look_cancelled, page))

    def is_switched_off(self) -> bool:
        page = self.page
        return page is not None and page.unit in ablated_units(self.workbench.ablations,
                                                               page.site)

    # --- results ------------------------------------------------------------------------
    def _on_page(self, generation: int, page) -> None:
        info = self.workbench.info
        if generation != self._generation or info is None:
            return  # a page of the model that was open before
        self.page = page
        self.view.show_page(page, info.class_names, info.dataset_size,
                            self.is_switched_off(), info.kind is ModelKind.IMAGE,
                            unit_label(info, page.site, page.unit, page.n_units))
        self.shown.emit(page)

    def _current(self, page) -> bool:
        return self.page is page

    def _on_looked(self, page, vis) -> None:
        if self._current(page):
            self.view.show_feature(vis)
            self.looked.emit(vis)

    def _on_look_failed(self, page, error: MechscopeError) -> None:
        if isinstance(error, UnexpectedError):
            self.workbench.report_error(error)
        if self._current(page):
            self.view.show_look_failed(str(error))

    def _on_look_progress(self, page, fraction: float, _text: str) -> None:
        if self._current(page):
            self.view.show_looking(f"Optimising an input to excite it… {100 * fraction:.0f}% "
                                   "(Cancel in the status bar stops it)")

    def _on_look_cancelled(self, page) -> None:
        if self._current(page):
            self.view.show_look_failed("Cancelled: press the button to try again.")

    @Slot(tuple)
    def _on_ablations(self, _ablations) -> None:
        if self.page is not None:
            self.view.set_switched_off(self.is_switched_off())

    @Slot(object)
    def _on_model(self, _info) -> None:
        # Another model or other data: the page described units that are gone.
        self._generation += 1
        self.close()
