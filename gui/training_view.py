"""TrainingView: lessons 1–3 — step, run/pause, learning rate, seed, reset — with the
plots of :class:`TrainingPlots`. Training runs on the worker, a few steps per job, so the
window stays responsive and Pause takes effect at once."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QTimer, Signal, Slot
from PySide6.QtWidgets import (QDoubleSpinBox, QHBoxLayout, QLabel, QPushButton, QSpinBox,
                               QVBoxLayout, QWidget)

from core.api import SessionAPI
from core.lessons.snapshot import DEFAULT_LR
from gui.views.training_plots import TrainingPlots
from gui.worker import Worker

KEY = "train"
STEPS_PER_JOB = {"linear": 1, "logistic": 1, "mlp": 2}
RUN_INTERVAL_MS = 40  # ~25 updates a second: smooth, and slow enough to watch


class TrainingView(QWidget):
    """Owns one lesson's training controls and plots."""

    updated = Signal(object)               # the Snapshot just drawn
    open_in_workbench_requested = Signal()

    def __init__(self, session: SessionAPI, worker: Worker, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self._session, self._worker = session, worker
        self.trainer = ""
        self.snapshot = None
        self._pending = False
        self.title = QLabel("")
        self.title.setStyleSheet("font-size: 15px; font-weight: bold;")
        self.step_button = QPushButton("Step")
        self.run_button = QPushButton("Run")
        self.run_button.setCheckable(True)
        self.reset_button = QPushButton("Reset")
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(3)
        self.lr.setRange(0.001, 5.0)
        self.lr.setSingleStep(0.01)
        self.lr.setPrefix("learning rate ")
        self.seed = QSpinBox()
        self.seed.setRange(0, 9999)
        self.seed.setPrefix("seed ")
        self.sample = QSpinBox()
        self.sample.setPrefix("digit #")
        self.open_button = QPushButton("Open in workbench")
        self.status = QLabel("")
        controls = QHBoxLayout()
        for widget in (self.step_button, self.run_button, self.reset_button, self.lr,
                       self.seed, self.sample, self.open_button):
            controls.addWidget(widget)
        controls.addStretch(1)
        self.plots = TrainingPlots()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.title)
        layout.addLayout(controls)
        layout.addWidget(self.status)
        layout.addWidget(self.plots, 1)
        self.step_button.clicked.connect(self._on_step)
        self.run_button.toggled.connect(self._on_run_toggled)
        self.reset_button.clicked.connect(self._on_reset)
        self.sample.valueChanged.connect(self._on_sample)
        self.open_button.clicked.connect(self.open_in_workbench_requested)

    def start(self, trainer: str, title: str) -> None:
        """Begin lesson ``trainer`` from scratch."""
        self.run_button.setChecked(False)
        self.trainer = trainer
        self.title.setText(title)
        self.lr.setValue(DEFAULT_LR[trainer])
        mlp = trainer == "mlp"
        self.sample.setVisible(mlp)
        self.open_button.setVisible(mlp)
        self.seed.setVisible(not mlp)
        self._submit(self._session.lesson_start, trainer, self.seed.value(), self.lr.value())

    def _submit(self, fn, *args) -> None:
        self._pending = True
        self._worker.submit(KEY, fn, *args, on_done=self._on_snapshot,
                            on_error=self._on_failed, on_cancel=self._on_cancelled)

    def train(self, n: int) -> None:
        """Run ``n`` steps in one job (for scripted runs and tests)."""
        self._step(n)

    def _step(self, n: int) -> None:
        self._submit(self._session.lesson_step, n, self.lr.value(), self.sample.value())

    @Slot()
    def _on_step(self) -> None:
        if self.snapshot is not None and not self._pending:
            self._step(1)

    @Slot(bool)
    def _on_run_toggled(self, running: bool) -> None:
        self.run_button.setText("Pause" if running else "Run")
        self.step_button.setEnabled(not running)
        if running and not self._pending:
            self._step(STEPS_PER_JOB.get(self.trainer, 1))

    @Slot()
    def _on_reset(self) -> None:
        self.run_button.setChecked(False)
        self._submit(self._session.lesson_start, self.trainer, self.seed.value(),
                     self.lr.value())

    @Slot(int)
    def _on_sample(self, _value: int) -> None:
        if not self._pending and not self.run_button.isChecked():
            self._step(0)

    def _on_snapshot(self, snap) -> None:
        self._pending = False
        self.snapshot = snap
        self.plots.show_snapshot(snap)
        metric = "" if snap.metric is None else \
            f" · accuracy {100 * snap.metric:.1f}% on {snap.metric_on}"
        self.status.setText(f"step {snap.step} · loss {snap.losses[-1]:.4f}{metric} · "
                            f"seed {snap.seed} · learning rate {snap.lr:g}")
        if "n_samples" in snap.data:
            self.sample.setRange(0, snap.data["n_samples"] - 1)
        self.updated.emit(snap)
        if self.run_button.isChecked():
            # A follow-up job from a zero-ish timer, never from inside this handler.
            QTimer.singleShot(RUN_INTERVAL_MS, self._on_tick)

    @Slot()
    def _on_tick(self) -> None:
        if self.run_button.isChecked() and not self._pending:
            self._step(STEPS_PER_JOB.get(self.trainer, 1))

    def _on_cancelled(self) -> None:
        self._pending = False
        self.run_button.setChecked(False)

    def _on_failed(self, error) -> None:
        self._pending = False
        self.run_button.setChecked(False)
        self.status.setText(str(error))
