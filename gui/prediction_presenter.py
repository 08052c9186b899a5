"""PredictionPresenter: after a capture, the layer view, the ablation list and the
prediction — each drawn by the widget that fits the model's kind, picked by lookup."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QStackedWidget, QWidget

from core.kinds import LayerView, ModelKind
from gui.ablation_panel import AblationPanel
from gui.input_panel import InputPanel
from gui.message_bar import MessageBar
from gui.token_input_panel import TokenInputPanel
from gui.view_stack import ViewStack
from gui.views.prediction_view import PredictionView
from gui.views.token_prediction_view import TokenPredictionView
from gui.workbench import Workbench


@dataclass(frozen=True)
class KindWidgets:
    """The input loader and prediction view a kind of model gets, and its hint."""

    input: QWidget
    prediction: QWidget
    hint: str = ""


class PredictionPresenter(QObject):
    """Draws each capture in the widgets of the open model's kind."""

    def __init__(self, workbench: Workbench, views: ViewStack, ablation: AblationPanel,
                 inputs: QStackedWidget, predictions: QStackedWidget,
                 image_input: InputPanel, token_input: TokenInputPanel,
                 prediction: PredictionView, token_prediction: TokenPredictionView,
                 messages: MessageBar) -> None:
        super().__init__(workbench)
        self.workbench, self.views, self.ablation = workbench, views, ablation
        self.inputs, self.predictions, self.messages = inputs, predictions, messages
        self.image_input, self.token_input = image_input, token_input
        self.prediction, self.token_prediction = prediction, token_prediction
        self.widgets = {
            ModelKind.IMAGE: KindWidgets(image_input, prediction),
            ModelKind.TOKENS: KindWidgets(token_input, token_prediction,
                                          "Type letters, e.g. KQBXDKQBXD, and press Enter"),
            ModelKind.EMBEDDING: KindWidgets(token_input, token_prediction,
                                             "Type a sentence and press Enter"),
        }
        self._draw = {ModelKind.IMAGE: self._draw_classes,
                      ModelKind.TOKENS: self._draw_next_tokens,
                      ModelKind.EMBEDDING: self._draw_embedding}
        workbench.model_opened.connect(self._on_model_opened)
        workbench.capture_ready.connect(self._on_capture_ready)

    @Slot(object)
    def _on_model_opened(self, info) -> None:
        chosen = self.widgets[info.kind]
        self.inputs.setCurrentWidget(chosen.input)
        self.predictions.setCurrentWidget(chosen.prediction)
        if info.kind.reads_text:
            self.token_input.set_hint(chosen.hint)
            self.token_input.show_examples(info.example_texts)
        else:
            self.image_input.show_examples(info.examples, info.example_labels,
                                           info.dataset_size)

    @Slot(object, object)
    def _on_capture_ready(self, capture, current) -> None:
        wb = self.workbench
        info, model = wb.layer_info(wb.layer), wb.info
        if info is None or model is None:
            return
        ids = current.model_input if current is not None and model.kind.reads_text else ()
        tokens = [model.class_names[int(t)] for t in ids]
        if not self.views.show_capture(model, info, capture, tokens):
            return
        target = wb.layer_info(info.heads_site) if info.view is LayerView.ATTENTION else info
        if self.ablation.layer != target:
            self.ablation.show_layer(target, wb.ablations)
        self._draw[model.kind](capture.prediction, current, ids, tokens)

    def _draw_classes(self, p, current, _ids, _tokens) -> None:
        self.prediction.show_prediction(p.probabilities, p.baseline_probabilities,
                                        p.class_names, current.label if current else None)

    def _draw_next_tokens(self, p, current, ids, tokens) -> None:
        self.token_input.show_tokens(tokens, current.description)
        self.token_prediction.show_prediction(ids, p.probabilities, p.baseline_probabilities,
                                              p.class_names)
        self.messages.hide()

    def _draw_embedding(self, p, current, _ids, tokens) -> None:
        self.token_input.show_tokens(tokens, current.description)
        self.token_prediction.show_embedding(p.embedding, p.baseline_embedding)
        self.messages.hide()
