"""The model's own held-out digits, saved as a user would save them and opened again,
score what they score as raw inputs (issue #12, item 1: the converter filled 6 of 8
pixels and these scored 28.4 % instead of 99.2 %)."""

import numpy as np
import pytest
from PIL import Image

from core.datasets import load_digits
from core.files.images import load_image
from core.files.user_data import load_user_data
from core.zoo.loading import open_zoo

POINT = 0.01


@pytest.fixture(scope="module")
def digits():
    return load_digits("eval")


@pytest.fixture(scope="module")
def cnn():
    return open_zoo("digits_cnn")


def accuracy(cnn, inputs, labels) -> float:
    outputs = np.asarray(cnn.run(np.asarray(inputs, np.float32)).outputs)
    return float((outputs.argmax(axis=1) == np.asarray(labels)).mean())


def _picture(display: np.ndarray, ink: str, scale: int, margin: int = 0) -> Image.Image:
    """An 8-bit grayscale PNG of one digit, as a user would save it."""
    pixels = np.round(display * 255).astype(np.uint8)
    if margin:
        pixels = np.pad(pixels, margin)
    if ink == "dark":  # dark ink on light paper
        pixels = 255 - pixels
    img = Image.fromarray(pixels, "L")
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST)


@pytest.mark.parametrize("ink,scale", [("light", 1), ("dark", 1), ("light", 8),
                                       ("dark", 8)])
def test_saved_digits_convert_back_to_what_the_model_scores(tmp_path, digits, cnn, ink,
                                                            scale):
    raw = accuracy(cnn, digits.inputs, digits.labels)
    converted = []
    for i, display in enumerate(digits.display):
        path = tmp_path / f"{i}.png"
        _picture(display, ink, scale).save(path)
        converted.append(load_image(path).model_input)
    assert raw > 0.98
    assert accuracy(cnn, converted, digits.labels) >= raw - POINT


def test_digits_with_a_margin_are_centred(tmp_path, digits, cnn):
    # With paper around it, where the digit sat across its short side is lost (about
    # 1 in 12 held-out digits is not centred to the pixel), so this is a little lower.
    raw = accuracy(cnn, digits.inputs, digits.labels)
    converted = []
    for i, display in enumerate(digits.display):
        path = tmp_path / f"{i}.png"
        _picture(display, "dark", 8, margin=3).save(path)
        converted.append(load_image(path).model_input)
    assert accuracy(cnn, converted, digits.labels) >= raw - 3 * POINT


def test_a_labelled_folder_round_trip(tmp_path, digits, cnn):
    for i, (display, label) in enumerate(zip(digits.display, digits.labels)):
        folder = tmp_path / str(label)
        folder.mkdir(exist_ok=True)
        _picture(display, "dark", 4).save(folder / f"{i}.png")
    data = load_user_data(tmp_path, digits.class_names, (1, 16, 16))
    assert len(data) == len(digits)
    raw = accuracy(cnn, digits.inputs, digits.labels)
    assert accuracy(cnn, data.inputs, data.labels) >= raw - POINT
    assert data.display.shape == (len(digits), 8, 8)


def test_npz_round_trip(tmp_path, digits, cnn):
    path = tmp_path / "digits.npz"
    np.savez_compressed(path, x=np.asarray(digits.inputs), y=np.asarray(digits.labels))
    data = load_user_data(path, digits.class_names, (1, 16, 16))
    raw = accuracy(cnn, digits.inputs, digits.labels)
    assert accuracy(cnn, data.inputs, data.labels) >= raw - POINT


def test_csv_round_trip(tmp_path, digits, cnn):
    flat = np.asarray(digits.inputs).reshape(len(digits), -1)
    lines = [",".join(f"p{i}" for i in range(flat.shape[1])) + ",label"]
    lines += [",".join(f"{v:.4g}" for v in row) + f",{label}"
              for row, label in zip(flat, digits.labels)]
    path = tmp_path / "digits.csv"
    path.write_text("\n".join(lines) + "\n")
    data = load_user_data(path, digits.class_names, (1, 16, 16))
    assert len(data) == len(digits)
    raw = accuracy(cnn, digits.inputs, digits.labels)
    assert accuracy(cnn, data.inputs, data.labels) >= raw - POINT


def test_sixteen_bit_pngs_round_trip(tmp_path, digits, cnn):
    # Pillow's own conversion to 8 bits clips 16-bit pixels at 255 (all paper).
    converted = []
    for i, display in enumerate(digits.display[:100]):
        pixels = (65535 - np.round(display * 65535)).astype(np.uint16)
        Image.fromarray(pixels).resize((32, 32), Image.NEAREST).save(tmp_path / f"{i}.png")
        converted.append(load_image(tmp_path / f"{i}.png").model_input)
    raw = accuracy(cnn, digits.inputs[:100], digits.labels[:100])
    assert accuracy(cnn, converted, digits.labels[:100]) >= raw - POINT
