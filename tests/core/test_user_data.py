"""The user's own evaluation data: round trips, and every bad file gives its message
and keeps the data that was in use (issue #6, data)."""

import io
import zipfile

import numpy as np
import pytest
from PIL import Image, ImageDraw

from core.errors import InputError
from core.session import Session


@pytest.fixture
def usession():
    s = Session()
    s.open_model("digits_cnn")
    return s


def _stroke_digit(path, vertical: bool) -> None:
    img = Image.new("L", (60, 80), 255)
    line = [(30, 10), (30, 70)] if vertical else [(10, 40), (50, 40)]
    ImageDraw.Draw(img).line(line, fill=0, width=8)
    img.save(path)


def test_labelled_folder(usession, tmp_path):
    for name in ("1", "7"):
        (tmp_path / name).mkdir()
    for i in range(3):
        _stroke_digit(tmp_path / "1" / f"{i}.png", vertical=True)
    (tmp_path / "7" / "broken.png").write_bytes(b"\x89PNG not really")
    _stroke_digit(tmp_path / "7" / "flat.png", vertical=False)
    info = usession.use_dataset(str(tmp_path))
    assert info.dataset_size == 4 and "1 unreadable skipped" in info.dataset_name
    result = usession.evaluate()
    assert result.n == 4 and result.per_group[1] == 1.0  # the model reads the 1s
    assert info.examples.shape == (4, 8, 8)


def test_npz_and_csv_round_trips(usession, tmp_path):
    base = usession.evaluate().score
    ds = usession.dataset
    for layout in ("nchw", "flat", "nhw"):
        x = np.array(ds.inputs)
        x = {"nchw": x, "flat": x.reshape(len(x), -1), "nhw": x[:, 0]}[layout]
        np.savez_compressed(tmp_path / f"{layout}.npz", x=x, y=ds.labels)
        usession.use_dataset(str(tmp_path / f"{layout}.npz"))
        assert usession.evaluate().score == pytest.approx(base)
    rows = np.hstack([np.array(ds.inputs[:40]).reshape(40, -1), ds.labels[:40, None]])
    lines = ["," .join(f"p{i}" for i in range(256)) + ",label"]
    lines += [",".join(f"{v:g}" for v in row) for row in rows]
    (tmp_path / "digits.csv").write_text("\n".join(lines))
    info = usession.use_dataset(str(tmp_path / "digits.csv"))
    assert info.dataset_size == 40 and usession.evaluate().score > 0.9


def _bomb(path) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        header = io.BytesIO()
        np.save(header, np.zeros(1))
        archive.writestr("x.npy", header.getvalue()[:128] + b"\0" * (600 * 1024 ** 2))
        archive.writestr("y.npy", header.getvalue())


BAD = [
    ("bomb.npz", _bomb, "would unpack to"),
    ("objects.npz", lambda p: np.savez(p, x=np.array([{"a": 1}], dtype=object), y=[0]),
     "holds Python objects"),
    ("wrong_shape.npz", lambda p: np.savez(p, x=np.zeros((5, 3, 3)), y=np.zeros(5)),
     "expects \\(1, 16, 16\\)"),
    ("count.npz", lambda p: np.savez(p, x=np.zeros((5, 256)), y=np.zeros(4)),
     "5 inputs but 4 labels"),
    ("range.npz", lambda p: np.savez(p, x=np.zeros((2, 256)), y=np.array([3, 12])),
     "labels must lie in 0..9"),
    ("nokeys.npz", lambda p: np.savez(p, a=np.zeros(3)), "needs an inputs array"),
    ("inputs_only.npy", lambda p: np.save(p, np.zeros((3, 256))), "holds inputs only"),
    ("text.csv", lambda p: p.write_text("a,b\n1,2\n3,abc\n"), "line 3: 'abc' is not a number"),
    ("ragged.csv", lambda p: p.write_text("1,2,3\n1,2\n"), "different lengths"),
    ("empty.csv", lambda p: p.write_text(""), "no rows of numbers"),
    ("page.npz", lambda p: p.write_text("<html></html>"), "web page"),
    ("broken.npz", lambda p: p.write_bytes(b"PK\x03\x04" + b"\x01" * 64), "damaged"),
]


@pytest.mark.parametrize("name,make,message", BAD, ids=[b[0] for b in BAD])
def test_bad_data_gives_its_message_and_keeps_the_data(usession, tmp_path, name, make,
                                                       message):
    path = tmp_path / name
    make(path)
    before = usession.dataset
    with pytest.raises(InputError, match=message):
        usession.use_dataset(str(path))
    assert usession.dataset is before


def test_folder_messages(usession, tmp_path):
    with pytest.raises(InputError, match="no sub-folders"):
        usession.use_dataset(str(tmp_path))
    (tmp_path / "cats").mkdir()
    with pytest.raises(InputError, match="cats are not classes"):
        usession.use_dataset(str(tmp_path))
