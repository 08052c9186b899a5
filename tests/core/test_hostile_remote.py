"""The hostile corpus through the route users take (issue #10): every model, data and
image file is opened with ``open_file`` in the compute process; each gives its message,
keeps the model and data that were open, hangs nothing, and never surfaces a bug (an
unexpected error) — and the process survives all of them."""

import re

import pytest

from core.ablation import Ablation
from core.errors import MechscopeError
from core.files.checkpoints import NeedsTrust
from tests.hostile.onnx_traps import endless_loop, huge_constant
from tests.hostile import data_corpus
from tests.hostile.corpus import MARKER, OK, TRUST
from tests.hostile.messages import assert_readable


def _hostile(folder, corpora) -> list[tuple[str, str]]:
    # A model-corpus file that is really an image or data opens as one through
    # open_file (the route decides by content): its message differs, "" = any.
    from core.files.opening import classify

    def expect(path, e, route):
        try:
            return e if classify(path) == route or e in (OK, TRUST) else ""
        except MechscopeError:
            return e
    cases = []
    for route, (where, manifest) in zip(("model", "data", "image"), corpora):
        cases += [(str(where / n), expect(where / n, e, route)) for n, e in manifest]
    endless_loop(folder / "endless_loop.onnx")
    huge_constant(folder / "allocates_64_gib.onnx")
    cases += [(str(folder / "endless_loop.onnx"), "did not finish a trial run"),
              (str(folder / "allocates_64_gib.onnx"), "memory|could not run")]
    return cases


def test_every_hostile_file_through_the_compute_process(remote, tmp_path, hostile_models,
                                                        hostile_data, hostile_images):
    cases = _hostile(tmp_path, (hostile_models, hostile_data, hostile_images))
    assert len(cases) > 100
    ablation = (Ablation("conv2", (3,)),)
    before = remote.evaluate(ablation).score
    pid = remote.pid
    for path, expect in cases:
        if expect in (OK, data_corpus.OK):
            continue  # opening works: covered by the GUI tests; here only refusals
        with pytest.raises(MechscopeError) as caught:
            remote.open_file(path)
        error = caught.value
        if expect == TRUST:
            assert isinstance(error, NeedsTrust), f"{path}: {error!r}"
        else:
            assert not isinstance(error, NeedsTrust), path
            assert re.search(expect, str(error)), f"{path}: {error}"
            assert_readable(str(error), path.rsplit("/", 1)[-1])
        assert type(error).__name__ != "RuntimeError", f"{path}: a bug: {error}"
    # The same model and data, in the same process: nothing was replaced or restarted.
    assert remote.pid == pid and remote.restarts == 0
    assert remote.evaluate(ablation).score == before
    assert remote.sample(0).model_input.shape == (1, 16, 16)
    assert not any(p.endswith(MARKER) for p, _ in cases)
