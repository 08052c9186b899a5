import warnings

import pytest

from core.remote import RemoteSession
from core.session import Session


@pytest.fixture(scope="session")
def session() -> Session:
    """The real shipped CNN and its held-out digits, loaded once."""
    s = Session()
    s.open_model("digits_cnn")
    return s


@pytest.fixture(scope="session")
def adapter(session):
    return session.adapter


@pytest.fixture(scope="session")
def dataset(session):
    return session.dataset


@pytest.fixture(scope="session")
def _remote_process():
    """One compute process for the run (starting one costs ~2.6 s), ended at the end."""
    r = RemoteSession()
    yield r
    r.close()
    assert not r._child.process.is_alive()


@pytest.fixture(scope="module")
def remote(_remote_process):
    """The compute process users get, with the shipped CNN and its digits open at the
    start of each module: a module before may have left its own model or data open."""
    _remote_process.open_model("digits_cnn")
    return _remote_process


def export_onnx(model, path):
    """The shipped CNN as an ONNX file with a dynamic batch, as a user would export it."""
    import torch

    with warnings.catch_warnings():  # the legacy exporter warns that it is legacy
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 1, 16, 16),), str(path), dynamo=False,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}})
    return path


@pytest.fixture(scope="session")
def hostile_models(tmp_path_factory):
    """(folder, manifest) of the hostile model corpus, built once for the run (~3 s): the
    tests only read its files (mutants are written under names of their own)."""
    from tests.hostile.corpus import build

    folder = tmp_path_factory.mktemp("hostile")
    return folder, build(folder)


@pytest.fixture(scope="session")
def hostile_data(tmp_path_factory):
    """(folder, manifest) of the hostile data files, built once for the run."""
    from tests.hostile.data_corpus import build_data

    folder = tmp_path_factory.mktemp("data")
    return folder, build_data(folder)


@pytest.fixture(scope="session")
def hostile_images(tmp_path_factory):
    """(folder, manifest) of the hostile images, built once for the run (~1 s)."""
    from tests.hostile.data_corpus import build_images

    folder = tmp_path_factory.mktemp("images")
    return folder, build_images(folder)


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory, adapter):
    """digits_cnn.onnx, exported once per module."""
    return export_onnx(adapter.model, tmp_path_factory.mktemp("onnx") / "digits_cnn.onnx")
