"""Data of any input shape for a model of the user's own (issue #15): .npz rows,
images and token ids, CSV, a folder of images per class; class names from a
classes.txt, the folder names, the model or its output count — and a sentence for
each way the data cannot be used."""

import os

import numpy as np
import pytest
from PIL import Image

from core.errors import InputError
from core.files.user_data import load_own_data
from core.kinds import ModelKind

RNG = np.random.default_rng(7)


def _npz(path, x, y):
    np.savez(path, x=x, y=y)
    return path


def test_rows_images_and_tokens(tmp_path):
    rows = RNG.normal(size=(40, 12)).astype(np.float32)
    data = load_own_data(_npz(tmp_path / "rows.npz", rows, RNG.integers(0, 3, 40)), (12,),
                         n_outputs=3)
    assert data.kind is ModelKind.VALUES and data.inputs.shape == (40, 12)
    assert data.class_names == ("0", "1", "2") and data.display is None
    np.testing.assert_array_equal(data.inputs, rows)

    rgb = RNG.random((10, 3, 8, 8)).astype(np.float32)
    data = load_own_data(_npz(tmp_path / "rgb.npz", rgb, np.arange(10) % 2), (3, 8, 8),
                         ["cat", "dog"], 2)
    assert data.kind is ModelKind.IMAGE and data.class_names == ("cat", "dog")
    assert data.display.shape == (10, 8, 8)
    # Saved channels-last (as a Keras user would): moved to the model's layout.
    data = load_own_data(_npz(tmp_path / "nhwc.npz", np.moveaxis(rgb, 1, -1),
                              np.arange(10) % 2), (3, 8, 8), n_outputs=2)
    np.testing.assert_array_equal(data.inputs, rgb)

    ids = RNG.integers(0, 20, (6, 9))
    data = load_own_data(_npz(tmp_path / "tok.npz", ids, np.roll(ids, -1, axis=1)), (16,),
                         n_outputs=20)
    assert data.kind is ModelKind.TOKENS and data.inputs.dtype == np.int64
    assert len(data.class_names) == 20 and data.labels.shape == (6, 9)


def test_int_rows_with_one_label_each_are_numbers(tmp_path):
    counts = RNG.integers(0, 5, (30, 4))
    data = load_own_data(_npz(tmp_path / "counts.npz", counts, np.arange(30) % 2))
    assert data.kind is ModelKind.VALUES and data.inputs.dtype == np.float32
    assert data.class_names == ("0", "1")  # counted from the labels


def test_csv_rows(tmp_path):
    lines = ["a,b,c,label"] + [f"{i},{i * 0.5},{-i},{i % 3}" for i in range(9)]
    (tmp_path / "t.csv").write_text("\n".join(lines))
    data = load_own_data(tmp_path / "t.csv", (3,), n_outputs=3)
    assert data.kind is ModelKind.VALUES and data.inputs.shape == (9, 3)
    assert list(data.labels) == [i % 3 for i in range(9)]


def test_classes_txt_beside_the_file(tmp_path):
    path = _npz(tmp_path / "rows.npz", RNG.normal(size=(8, 5)), np.arange(8) % 3)
    (tmp_path / "classes.txt").write_text("setosa\nversicolor\nvirginica\n\n")
    data = load_own_data(path, (5,), ["x", "y", "z"], 3)
    assert data.class_names == ("setosa", "versicolor", "virginica")
    with pytest.raises(InputError, match="has 3 names, but the model puts out 4 scores"):
        load_own_data(path, (5,), None, 4)


def _picture(path, colour):
    Image.new("RGB", (20, 14), colour).save(path)


def test_folder_names_are_the_classes(tmp_path):
    for name, colour in (("red", (255, 0, 0)), ("blue", (0, 0, 255))):
        (tmp_path / name).mkdir()
        for i in range(2):
            _picture(tmp_path / name / f"{i}.png", colour)
    data = load_own_data(tmp_path, (3, 6, 6), n_outputs=2)
    assert data.class_names == ("blue", "red")  # sorted, like torchvision's ImageFolder
    assert data.inputs.shape == (4, 3, 6, 6) and data.kind is ModelKind.IMAGE
    red = data.inputs[np.asarray(data.labels) == 1]
    np.testing.assert_allclose(red[:, 0], 1.0)
    np.testing.assert_allclose(red[:, 2], 0.0)
    gray = load_own_data(tmp_path, (1, 5, 7), n_outputs=2)
    assert gray.inputs.shape == (4, 1, 5, 7) and 0 < gray.inputs.max() <= 1
    with pytest.raises(InputError, match="2 class folders .* 3 outputs; add a classes.txt"):
        load_own_data(tmp_path, (3, 6, 6), n_outputs=3)
    (tmp_path / "classes.txt").write_text("red\nblue\ngreen\n")
    data = load_own_data(tmp_path, (3, 6, 6), n_outputs=3)
    assert data.class_names == ("red", "blue", "green")
    assert set(np.asarray(data.labels)[:2]) == {1}  # blue is listed second


def test_folder_refused_for_a_model_that_reads_no_pictures(tmp_path):
    (tmp_path / "a").mkdir()
    _picture(tmp_path / "a" / "0.png", (9, 9, 9))
    with pytest.raises(InputError, match=r"folder of images, but the model reads inputs "
                                         r"of shape \(12,\)"):
        load_own_data(tmp_path, (12,), n_outputs=3)


@pytest.mark.parametrize("x, y, input_shape, message", [
    (np.zeros((5, 12)), np.zeros(4), (12,), "5 inputs but labels of shape"),
    (np.zeros((5, 10)), np.zeros(5), (12,), r"shape \(10,\), but the model expects \(12,\)"),
    (np.zeros((5, 12)), np.full(5, 2.5), (12,), "whole numbers"),
    (np.zeros((5, 12)), np.full(5, -1), (12,), "0 or more; found -1"),
    (np.zeros((5, 12)), np.full(5, 7), (12,), "labels go up to 7, but there are 3"),
    (np.full((5, 12), np.nan), np.zeros(5), (12,), "not finite"),
    (np.zeros((5, 12), complex), np.zeros(5), None, "complex numbers"),
    (np.zeros((3, 40), np.int64), np.zeros((3, 40), np.int64), (16,), "40 positions"),
])
def test_bad_arrays_are_a_sentence(tmp_path, x, y, input_shape, message):
    with pytest.raises(InputError, match=message):
        load_own_data(_npz(tmp_path / "d.npz", x, y), input_shape, None, 3)


@pytest.mark.parametrize("text, message", [
    (b"a\n\nb\nc\n", "line 2 is empty"),
    (b"a\nb\na\n", "'a' is on line 1 and on line 3"),
    (b"\xff\xfe\x00a", "not UTF-8"),
    (b"", "is empty"),
])
def test_bad_classes_txt(tmp_path, text, message):
    path = _npz(tmp_path / "rows.npz", np.zeros((3, 2)), np.arange(3))
    (tmp_path / "classes.txt").write_bytes(text)
    with pytest.raises(InputError, match=message):
        load_own_data(path, (2,), None, 3)


def test_hostile_classes_txt_and_npz(tmp_path):
    path = _npz(tmp_path / "rows.npz", np.zeros((3, 2)), np.arange(3))
    os.mkfifo(tmp_path / "classes.txt")  # opening it would block: refused unopened
    with pytest.raises(InputError, match="named pipe"):
        load_own_data(path, (2,), None, 3)
    os.remove(tmp_path / "classes.txt")
    with open(tmp_path / "classes.txt", "wb") as handle:
        handle.truncate(5 * 1024 * 1024)
    with pytest.raises(InputError, match="too large to be a list of class names"):
        load_own_data(path, (2,), None, 3)
    os.remove(tmp_path / "classes.txt")
    objects = tmp_path / "objects.npz"
    np.savez(objects, x=np.array([{"a": 1}] * 3, dtype=object), y=np.arange(3))
    with pytest.raises(InputError):  # never unpickled
        load_own_data(objects, (2,), None, 3)
    (tmp_path / "fake.npz").write_bytes(b"PK\x03\x04 not a zip at all")
    with pytest.raises(InputError, match="damaged|not NumPy|ZIP"):
        load_own_data(tmp_path / "fake.npz", (2,), None, 3)
    np.save(tmp_path / "only.npy", np.zeros((3, 2)))
    with pytest.raises(InputError, match="inputs only"):
        load_own_data(tmp_path / "only.npy", (2,), None, 3)


def test_own_token_ids_for_the_token_model(tmp_path):
    from core.session import Session

    session = Session()
    session.open_model("induction_transformer")
    built_in = session.dataset
    np.savez(tmp_path / "ids.npz", x=np.array(built_in.inputs[:32]),
             y=np.array(built_in.labels[:32]))
    info = session.use_dataset(str(tmp_path / "ids.npz"))
    assert info.kind is ModelKind.TOKENS and info.dataset_size == 32
    assert info.example_texts[0].split() == [built_in.class_names[t]
                                             for t in built_in.inputs[0]
                                             if t != built_in.pad_id][:64]
    assert session.evaluate().score > 0.9  # the induction head copies the repeat
    np.savez(tmp_path / "rows.npz", x=RNG.random((5, 25)).astype(np.float32), y=np.zeros(5))
    with pytest.raises(InputError, match="does not hold what .* reads \\(token ids"):
        session.use_dataset(str(tmp_path / "rows.npz"))
    assert session.dataset.name == "ids.npz"  # the data in use stays
