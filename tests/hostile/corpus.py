"""Generate the hostile and malformed model files, with a manifest of what the user
must be told for each. Run at test time into a temporary folder; nothing is committed.

``python -m tests.hostile.corpus OUT_DIR`` writes the files and prints the manifest.

Every canary pickle, if it were ever unpickled unsafely, would create ``MARKER`` in the
output folder; the tests check it never appears.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import sys
import warnings
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

MARKER = "PWNED"
OK, TRUST = "<opens>", "<asks for trust>"


class _Reduce:
    """An object whose unpickling calls ``fn(*args)``: the classic pickle payload."""

    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _payloads(marker: str) -> dict[str, object]:
    import builtins
    import importlib
    import subprocess

    touch = f"open({marker!r}, 'w').write('x')"
    return {
        "os_system": _Reduce(os.system, (f"touch {marker}",)),
        "exec": _Reduce(builtins.exec, (touch,)),
        "eval": _Reduce(builtins.eval, (touch,)),
        "subprocess": _Reduce(subprocess.call, (["touch", marker],)),
        "importlib": _Reduce(importlib.import_module, ("os",)),
        "open_write": _Reduce(builtins.open, (marker, "w")),
    }


def _torch_zip_with(payload: bytes) -> bytes:
    """A real torch zip checkpoint whose data.pkl is replaced by ``payload``."""
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = payload if item.filename.endswith("data.pkl") else src.read(item)
            dst.writestr(item, data)
    return out.getvalue()


def _digits_state() -> OrderedDict:
    from safetensors.torch import load_file

    from core.paths import resource_path

    return OrderedDict(load_file(str(resource_path("models", "digits_cnn.safetensors"))))


def _safetensors_bytes(header: bytes, body: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header)) + header + body


def build(out: Path) -> list[tuple[str, str]]:
    """Write the corpus into ``out``; returns (file name, expected message) pairs."""
    out.mkdir(parents=True, exist_ok=True)
    marker = str(out / MARKER)
    rng = np.random.default_rng(0)
    manifest: list[tuple[str, str]] = []

    def add(name: str, data: bytes, expect: str) -> None:
        (out / name).write_bytes(data)
        manifest.append((name, expect))

    add.manifest = manifest  # for entries that are not written as bytes

    state = _digits_state()
    good = io.BytesIO()
    torch.save(state, good)
    legacy = io.BytesIO()
    torch.save(state, legacy, _use_new_zipfile_serialization=False)
    from safetensors.torch import save

    good_st = save(dict(state))
    # Valid files open.
    add("good_state_dict.pt", good.getvalue(), OK)
    add("good_legacy.pth", legacy.getvalue(), OK)
    add("good.safetensors", good_st, OK)
    wrapped = io.BytesIO()
    torch.save({"model_state_dict": state, "epoch": 7}, wrapped)
    add("good_wrapped.ckpt", wrapped.getvalue(), OK)
    # Random bytes and truncations, under every extension people use.
    for ext in ("pt", "pth", "bin", "ckpt", "safetensors", "onnx", "pt2", "model", "pkl",
                "h5", "tar", "npz"):
        add(f"random.{ext}", rng.bytes(2048), "format Mechscope does not know")
    for name, data in (("good_state_dict.pt", good.getvalue()),
                       ("good_legacy.pth", legacy.getvalue()), ("good.safetensors", good_st)):
        for frac in (0.5, 0.9):
            cut = data[: int(len(data) * frac)]
            add(f"truncated_{int(frac * 100)}_{name}", cut, "could not be read|damaged|cut short")
    add("empty.pt", b"", "an empty file")
    # Canary pickles: legacy pickle and zip form; none may run.
    for key, obj in _payloads(marker).items():
        raw = pickle.dumps(obj, protocol=2)
        add(f"canary_{key}.pt", raw, TRUST)
        add(f"canary_{key}_zip.pt", _torch_zip_with(raw), TRUST)
    for protocol in (3, 4, 5):
        raw = pickle.dumps(_payloads(marker)["os_system"], protocol=protocol)
        add(f"canary_os_system_protocol{protocol}.pt", raw, TRUST)
    add("canary_protocol0.pt", pickle.dumps(_payloads(marker)["exec"], protocol=0),
        "a text file")
    nested = pickle.dumps({"state_dict": {"w": _payloads(marker)["os_system"]}}, protocol=2)
    add("canary_nested.pth", nested, TRUST)
    # Code that the user may choose to trust: a whole pickled module, TorchScript.
    from core.zoo import digits_cnn

    module = digits_cnn.build()
    module.load_state_dict(state)
    full = io.BytesIO()
    torch.save(module, full)
    add("full_module.pt", full.getvalue(), TRUST)
    script = io.BytesIO()
    with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; users still have it
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(module), script)
    add("torchscript.pt", script.getvalue(), TRUST)
    # Things that are not models at all.
    add("page.pt", b"<!DOCTYPE html><html><body>Sign in to download</body></html>",
        "a web page")
    add("lfs_pointer.pt", b"version https://git-lfs.github.com/spec/v1\noid sha256:"
        + b"0" * 64 + b"\nsize 1234\n", "Git LFS pointer")
    add("script.pt", b"import torch\nmodel = torch.nn.Linear(2, 2)\n", "Python source")
    add("notes.safetensors", b"these are my notes\n", "a text file")
    png = io.BytesIO()
    from PIL import Image

    Image.new("L", (8, 8)).save(png, format="PNG")
    add("image.pt", png.getvalue(), "PNG image")
    npy = io.BytesIO()
    np.save(npy, np.zeros((3, 3)))
    add("array.pt", npy.getvalue(), "NumPy .npy")
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x.npy", b"\x93NUMPY" + b"\x00" * 20_000_000)
    add("zipbomb.npz", bomb.getvalue(), "npz")
    plain_zip = io.BytesIO()
    with zipfile.ZipFile(plain_zip, "w") as archive:
        archive.writestr("readme.txt", "hello")
    add("archive.pt", plain_zip.getvalue(), "ZIP archive that is not")
    add("broken_zip.pt", b"PK\x03\x04" + rng.bytes(300), "damaged ZIP")
    # safetensors that lie about their header.
    add("huge_header.safetensors", struct.pack("<Q", 1 << 40) + b"{" + b" " * 100,
        "header that claims")
    add("header_past_end.safetensors", _safetensors_bytes(b"{" + b" " * 50)[:-10],
        "header that claims")
    add("bad_json.safetensors", _safetensors_bytes(b"{not json at all!!}"),
        "damaged \\(its header is not valid JSON\\)")
    add("bad_offsets.safetensors", _safetensors_bytes(
        b'{"w":{"dtype":"F32","shape":[1000,1000],"data_offsets":[0,4000000]}}', b"\0" * 16),
        "is cut short")
    _tricks(out, add, state, good.getvalue())
    # Real weights that fit no architecture, or almost fit one.
    other = io.BytesIO()
    torch.save(torch.nn.Linear(3, 3).state_dict(), other)
    add("other_architecture.pt", other.getvalue(), "do not fit any architecture")
    wrong = OrderedDict(state)
    wrong["fc1.weight"] = torch.zeros(32, 512)
    bad_shape = io.BytesIO()
    torch.save(wrong, bad_shape)
    add("wrong_shape.pt", bad_shape.getvalue(), "wrong shape: fc1.weight")
    partial = OrderedDict((k, v) for k, v in state.items() if not k.startswith("fc2"))
    missing = io.BytesIO()
    torch.save(partial, missing)
    add("missing_keys.pt", missing.getvalue(), "missing: fc2.bias, fc2.weight")
    no_tensors = io.BytesIO()
    torch.save({"epoch": 3, "lr": 0.1}, no_tensors)
    add("no_tensors.pt", no_tensors.getvalue(), "holds no tensors")
    add("just_a_list.pt", pickle.dumps([1, 2, 3], protocol=2), "could not be read")
    _onnx_files(out, add)
    return manifest


def _tricks(out: Path, add, state: OrderedDict, good: bytes) -> None:
    """Issue #10: memory before the size check, checksums, half precision, pipes."""
    from tests.hostile import tricks

    add("expanded.pt", tricks.expanded(state), "an expanded tensor")
    add("shared_storage.pt", tricks.shared_storage(), "repeat shared storage")
    add("deflate_bomb.pt", tricks.deflate_bomb(), "would unpack to 3 GB")
    add("bad_crc.pt", tricks.bad_crc(good),
        "is damaged \\(a checksum does not match\\); re-save or re-download it")
    for dtype, label in ((torch.bfloat16, "bf16"), (torch.float16, "fp16")):
        add(f"{label}.pt", tricks.half_precision(state, dtype, "pt"), OK)
        add(f"{label}.safetensors", tricks.half_precision(state, dtype, "safetensors"), OK)
    add("empty_header.safetensors", _safetensors_bytes(b"{}"), "holds no tensors")
    add("metadata_only.safetensors", _safetensors_bytes(b'{"__metadata__":{"a":"b"}}'),
        "holds no tensors")
    add("huge_count.safetensors", _safetensors_bytes(
        b'{"w":{"dtype":"F32","shape":[1000000,1000000],"data_offsets":[0,4000000000000]}}'),
        "more than 500,000,000 numbers")
    add("float8.safetensors", _safetensors_bytes(
        b'{"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}', b"\0\0"),
        "cannot read; save it as float32")
    add("overlapping.safetensors", _safetensors_bytes(
        b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
        b'"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', b"\0" * 12),
        "claim the same bytes")
    # Not files at all: opening the pipe would wait for a writer forever.
    os.mkfifo(out / "model.pt")
    add.manifest.append(("model.pt", "model.pt is a named pipe, not a file"))
    (out / "weights.pt").mkdir()
    add.manifest.append(("weights.pt", "weights.pt is a folder, not a file"))


def _tiny_onnx(initializer_on_disk: bool = False):
    """A 1-input, 1-output ONNX graph: y = x @ W (W 4x2)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((4, 2), np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"], name="/fc/MatMul")], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2])], [weight])
    return onnx.helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _onnx_files(out: Path, add) -> None:
    import onnx
    from onnx import helper

    broken = _tiny_onnx()
    broken.graph.node.append(helper.make_node("Relu", ["nowhere"], ["z"], name="/bad/Relu"))
    add("broken_graph.onnx", broken.SerializeToString(), "fails ONNX's own checks")
    add("truncated.onnx", _tiny_onnx().SerializeToString()[:40], "damaged or cut short|format")
    (out / "secret.bin").write_bytes(b"\0" * 32)
    os.mkfifo(out / "pipe.bin")  # inside the folder, but reading it would hang
    for name, location in (("escape_dotdot.onnx", "../secret.bin"),
                           ("escape_absolute.onnx", str(out / "secret.bin")),
                           ("escape_symlink.onnx", "link.bin"), ("pipe_data.onnx", "pipe.bin")):
        model = _tiny_onnx()
        tensor = model.graph.initializer[0]
        tensor.ClearField("raw_data")
        tensor.data_location = onnx.TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", "0"), ("length", "32")):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        add(name, model.SerializeToString(),
            "not a regular file" if name == "pipe_data.onnx" else "outside its folder")
    link = out / "link.bin"
    if not link.exists():
        link.symlink_to(out.parent / "elsewhere.bin")
    add("tiny_other_shape.onnx", _tiny_onnx().SerializeToString(), "no dataset of that shape")


if __name__ == "__main__":
    from tests.hostile.data_corpus import build_data, build_images

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "hostile_corpus")
    for part, builder in (("models", build), ("data", build_data), ("images", build_images)):
        for name, expect in builder(target / part):
            print(f"{part}/{name}\t{expect}")
