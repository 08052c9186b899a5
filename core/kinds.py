"""What kind of model is open, decided once in the core; the GUI picks its input loader,
prediction view and wording by looking the kind up, never by comparing strings."""

from __future__ import annotations

from enum import Enum


class ModelKind(str, Enum):
    """What a model reads and puts out.

    A ``str`` enum so that it pickles across the compute-process pipe and reads well in
    logs; compare with the members, not with their values.
    """

    #: An image in, class scores out (the digits CNN, an ONNX classifier).
    IMAGE = "image"
    #: Token ids in, next-token scores per position out (the induction transformer).
    TOKENS = "tokens"
    #: Token ids in, one sentence embedding out (MiniLM).
    EMBEDDING = "embedding"
    #: An array of numbers that is no picture (a table row, a signal) in, class scores
    #: out: a user's own model and data (issue #15); neuron views and ablations.
    VALUES = "values"

    @property
    def reads_text(self) -> bool:
        """Token ids in (a row of numbers is no text: it is fed as floats)."""
        return self in (ModelKind.TOKENS, ModelKind.EMBEDDING)

    @property
    def classifies(self) -> bool:
        """One label per example (an image or a row of numbers -> a class)."""
        return self in (ModelKind.IMAGE, ModelKind.VALUES)

    @property
    def metric(self) -> str:
        """What an evaluation scores: the fraction right, or the cosine similarity of
        the ablated to the intact output (an embedding has no right answer)."""
        return "cosine" if self is ModelKind.EMBEDDING else "accuracy"


class LayerView(str, Enum):
    """Which view draws a layer's output, decided from its shape and kind."""

    #: (heads, query, key) patterns: the attention view.
    ATTENTION = "attention"
    #: (C, H, W) maps: the channel grid.
    CHANNELS = "channels"
    #: (tokens, F): the sequence view.
    SEQUENCE = "sequence"
    #: (F,): the neuron view.
    NEURONS = "neurons"

    @property
    def unit_name(self) -> str:
        return {"attention": "head", "channels": "channel", "sequence": "feature",
                "neurons": "neuron"}[self.value]
