"""Every hostile data and image file gives its recorded sentence — naming the file, with
a reason and no raw error text — and nothing else escapes (issue #10)."""

import re

import numpy as np
import pytest

from core.errors import InputError, MechscopeError
from core.files.images import load_image
from core.files.probe import probe_image
from core.files.user_data import load_user_data
from tests.hostile.data_corpus import OK
from tests.hostile.messages import assert_readable

CLASSES = tuple(str(i) for i in range(10))


@pytest.fixture(scope="module")
def data_corpus(hostile_data):
    return hostile_data


@pytest.fixture(scope="module")
def image_corpus(hostile_images):
    return hostile_images


def test_every_data_file_gives_its_recorded_message(data_corpus):
    folder, manifest = data_corpus
    assert len(manifest) >= 20
    for name, expect in manifest:
        if expect == OK:
            data = load_user_data(folder / name, CLASSES, (1, 16, 16))
            assert len(data) == 3 and list(data.labels) == [1, 2, 3], name
            continue
        with pytest.raises(MechscopeError) as caught:
            load_user_data(folder / name, CLASSES, (1, 16, 16))
        assert isinstance(caught.value, InputError), f"{name}: {caught.value!r}"
        assert re.search(expect, str(caught.value)), f"{name}: {caught.value}"
        assert_readable(str(caught.value), name)


@pytest.mark.parametrize("reader", [load_image, probe_image])
def test_every_image_gives_its_recorded_message(image_corpus, reader):
    folder, manifest = image_corpus
    for name, expect in manifest:
        with pytest.raises(InputError) as caught:
            reader(folder / name)
        assert re.search(expect, str(caught.value)), f"{name}: {caught.value}"
        assert_readable(str(caught.value), name)


def test_a_needle_image_is_refused_before_decoding(tmp_path, monkeypatch):
    from PIL import Image

    from core.files import images

    Image.new("L", (1, 30000), 255).save(tmp_path / "needle.png")
    monkeypatch.setattr(images.Image.Image, "load", lambda self: pytest.fail("decoded"))
    with pytest.raises(InputError, match="one side more than 20 times the other"):
        load_image(tmp_path / "needle.png")


def test_a_needle_drawing_converts_without_a_huge_canvas():
    from core.files.images import convert_gray

    gray = np.zeros((30000, 1), np.float32)
    gray[100:29900] = 1.0
    converted = convert_gray(gray, "needle")  # a 30000x30000 canvas would be 3.6 GB
    assert converted.digit.shape == (8, 8) and converted.digit.max() == 1.0


def test_a_csv_field_over_the_csv_modules_limit(tmp_path):
    # For a large input the line limit lies beyond the csv module's own field limit.
    path = tmp_path / "wide.csv"
    path.write_text("1," + "9" * 200_000 + ",3\n")
    with pytest.raises(InputError) as caught:
        load_user_data(path, CLASSES, (3, 224, 224))
    assert "wide.csv, line 1, holds a value far too long to be a number" in str(caught.value)
    assert_readable(str(caught.value), "wide.csv")


def test_integral_float_labels_are_accepted(tmp_path):
    path = tmp_path / "floats.npz"
    np.savez(path, x=np.zeros((3, 256), np.float32), y=np.array([1.0, 2.0, 9.0]))
    assert list(load_user_data(path, CLASSES, (1, 16, 16)).labels) == [1, 2, 9]


@pytest.mark.parametrize("row,message", [
    (",".join(["1e300"] * 256) + ",1", "not finite numbers"),
    (",".join(["0"] * 256) + ",1e300", "labels must lie in 0..9; found 1e\\+300"),
    (",".join(["0"] * 256) + ",-1", "labels must lie in 0..9"),
], ids=["huge input", "huge label", "negative label"])
def test_numbers_out_of_range(tmp_path, row, message):
    path = tmp_path / "range.csv"
    path.write_text(row + "\n")
    with pytest.raises(InputError, match=message) as caught:
        load_user_data(path, CLASSES, (1, 16, 16))
    assert_readable(str(caught.value), "range.csv")


def test_load_folder_refuses_a_file(tmp_path):
    from core.files.user_data import load_folder

    (tmp_path / "x.csv").write_text("1\n")
    with pytest.raises(InputError, match="x.csv is a file, not a folder of images"):
        load_folder(tmp_path / "x.csv", CLASSES, (1, 16, 16))
