"""The file manager's "Open with Mechscope" (issue #10): the .desktop entry passes the
file, and every type it names is one the shared MIME database or our own MIME file
defines, covering every model and data extension Mechscope opens."""

import configparser
import xml.etree.ElementTree as ET

from core.paths import resource_path

STANDARD = {"image/png", "image/jpeg", "image/bmp", "image/gif", "image/tiff",
            "image/webp", "text/csv"}
NS = {"m": "http://www.freedesktop.org/standards/shared-mime-info"}


def _entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(resource_path("mechscope.desktop"))
    return parser["Desktop Entry"]


def test_the_entry_passes_the_file():
    assert _entry()["Exec"].split() == ["Mechscope", "%f"]


def test_every_named_type_is_defined_and_every_extension_covered():
    named = {t for t in _entry()["MimeType"].split(";") if t}
    root = ET.parse(resource_path("mechscope-mime.xml")).getroot()
    ours = {m.get("type"): {g.get("pattern") for g in m.findall("m:glob", NS)}
            for m in root.findall("m:mime-type", NS)}
    assert named <= STANDARD | set(ours), named - STANDARD - set(ours)
    assert set(ours) <= named
    globs = set().union(*ours.values())
    for ext in ("pt", "pth", "ckpt", "safetensors", "onnx", "keras", "npz"):
        assert f"*.{ext}" in globs, ext
    assert not named & {"application/octet-stream", "inode/directory"}  # too broad
