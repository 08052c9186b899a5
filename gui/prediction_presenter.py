"""PredictionPresenter: after a capture, the layer view, the ablation list and the
prediction — each drawn by the widget that fits the model's kind, picked by lookup."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QStackedWidget, QWidget

from core.kinds import LayerView, ModelKind
from gui.ablation_panel import AblationPanel
from gui.input_panel import InputPanel
from gui.message_bar import MessageBar
from gui.token_input_panel import TokenInputPanel
from gui.values_input_panel import ValuesInputPanel
from gui.view_stack import ViewStack
from gui.views.next_token_view import NextTokenView, reads_word_pieces
from gui.views.prediction_view import PredictionView
from gui.views.token_prediction_view import TokenPredictionView
from gui.workbench import Workbench


@dataclass(frozen=True)
class KindWidgets:
    """The input loader and prediction view a kind of model gets, and its hint."""

    input: QWidget
    prediction: QWidget
    hint: str = ""
    #: What the example list holds, for its tooltip ("" keeps the panel's own).
    examples_tip: str = ""


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
        # A language model's prompts get their own view: the letter table's wording
        # (induction, "where the letter appeared before") is the toy's.
        self.next_token = NextTokenView()
        predictions.addWidget(self.next_token)
        self.language = KindWidgets(token_input, self.next_token,
                                    "Type a prompt, e.g. The capital of France is, and press "
                                    "Enter")
        # Rows of numbers (a tabular model): the example strip with a chart of the row,
        # and the class probabilities like an image's.
        self.values_input = ValuesInputPanel()
        inputs.addWidget(self.values_input)
        self.values_input.sample_requested.connect(workbench.select_sample)
        #: The last dataset example fetched: its targets mark the right next tokens.
        self.sample = None
        self.widgets = {
            ModelKind.IMAGE: KindWidgets(image_input, prediction),
            ModelKind.VALUES: KindWidgets(self.values_input, prediction),
            ModelKind.TOKENS: KindWidgets(token_input, token_prediction,
                                          "Type letters, e.g. KQBXDKQBXD, and press Enter",
                                          "Sequences from the evaluation set: random "
                                          "letters, then the same letters again"),
            ModelKind.EMBEDDING: KindWidgets(token_input, token_prediction,
                                             "Type a sentence and press Enter",
                                             "Sentences from the evaluation set"),
        }
        self._draw = {ModelKind.IMAGE: self._draw_classes, ModelKind.VALUES: self._draw_classes,
                      ModelKind.TOKENS: self._draw_next_tokens,
                      ModelKind.EMBEDDING: self._draw_embedding}
        workbench.model_opened.connect(self._on_model_opened)
        workbench.capture_ready.connect(self._on_capture_ready)
        workbench.sample_ready.connect(self._on_sample_ready)

    def chosen(self, info) -> KindWidgets:
        """The widgets of ``info``'s kind: a language model's are the prompt's."""
        return self.language if reads_word_pieces(info) else self.widgets[info.kind]

    @Slot(object)
    def _on_sample_ready(self, sample) -> None:
        self.sample = sample
        info = self.workbench.info
        if info is not None and info.kind is ModelKind.VALUES:
            self.values_input.show_sample(sample.index, sample.label, sample.display,
                                          sample.model_input)

    @Slot(object)
    def _on_model_opened(self, info) -> None:
        chosen = self.chosen(info)
        self.sample = None
        self.inputs.setCurrentWidget(chosen.input)
        self.predictions.setCurrentWidget(chosen.prediction)
        if info.kind.reads_text:
            self.token_input.set_hint(chosen.hint, chosen.examples_tip or
                                      f"Sequences from the evaluation set: {info.dataset_name}")
            self.token_input.show_examples(info.example_texts)
        else:
            chosen.input.set_model(info)
            chosen.input.show_examples(info.examples, info.example_labels,
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
        if self.predictions.currentWidget() is self.next_token:
            sample = self.sample
            # The example's targets, when this capture is of that example (not typed).
            targets = (sample.targets if sample is not None and sample.targets is not None
                       and np.array_equal(sample.model_input, ids) else None)
            self.next_token.show_prediction(ids, p.probabilities, p.baseline_probabilities,
                                            p.class_names, targets)
        else:
            self.token_prediction.show_prediction(ids, p.probabilities,
                                                  p.baseline_probabilities, p.class_names)
        self.messages.hide()

    def _draw_embedding(self, p, current, _ids, tokens) -> None:
        self.token_input.show_tokens(tokens, current.description)
        self.token_prediction.show_embedding(p.embedding, p.baseline_embedding)
        self.messages.hide()
