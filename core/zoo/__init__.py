"""The built-in models: a registry by name, without importing torch until one opens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class ZooEntry:
    """A shipped model.

    Attributes
    ----------
    name : str
        Command-line name (``--model``).
    title : str
        What the user reads in the window.
    weights : str
        File under ``resources/models``.
    dataset : str
        Name of the evaluation dataset (see :func:`core.session.load_dataset`).
    input_shape : tuple of int
    default_layer : str
        The layer shown first.
    trained_by : str
        The module that trains it, so every weight file can be reproduced.
    builder : callable
        Returns the untrained architecture (imports torch).
    kind : {"image", "tokens"}
        What the model reads.
    """

    name: str
    title: str
    weights: str
    dataset: str
    input_shape: tuple[int, ...]
    default_layer: str
    trained_by: str
    builder: Callable[[], object]
    kind: str = "image"


def _digits_cnn():
    from core.zoo import digits_cnn

    return digits_cnn.build()


def _induction_transformer():
    from core.zoo import tiny_transformer

    return tiny_transformer.build()


ZOO: dict[str, ZooEntry] = {
    "digits_cnn": ZooEntry(
        name="digits_cnn",
        title="Digits CNN (2 conv + 2 dense, 8x8 handwritten digits)",
        weights="digits_cnn.safetensors",
        dataset="digits",
        input_shape=(1, 16, 16),
        default_layer="conv1",
        trained_by="core.zoo.train_digits_cnn",
        builder=_digits_cnn,
    ),
    "induction_transformer": ZooEntry(
        name="induction_transformer",
        title="Induction transformer (2 attention-only layers x 4 heads, letters)",
        weights="induction_transformer.safetensors",
        dataset="induction",
        input_shape=(25,),
        default_layer="block1.attn",
        trained_by="core.zoo.train_induction",
        builder=_induction_transformer,
        kind="tokens",
    ),
}

DEFAULT_MODEL = "digits_cnn"
