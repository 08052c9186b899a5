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
def remote():
    """The compute process users get, with the shipped CNN open; one for the run (its
    tests only open, ask and cancel, and the hostile-file test checks that the model and
    process stay), ended at the end."""
    r = RemoteSession()
    r.open_model("digits_cnn")
    yield r
    r.close()
    assert not r._child.process.is_alive()


def export_onnx(model, path):
    """The shipped CNN as an ONNX file with a dynamic batch, as a user would export it."""
    import torch

    with warnings.catch_warnings():  # the legacy exporter warns that it is legacy
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 1, 16, 16),), str(path), dynamo=False,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}})
    return path


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory, adapter):
    """digits_cnn.onnx, exported once per module."""
    return export_onnx(adapter.model, tmp_path_factory.mktemp("onnx") / "digits_cnn.onnx")
