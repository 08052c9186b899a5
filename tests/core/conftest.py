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


@pytest.fixture(scope="module")
def remote():
    """The compute process users get, with the shipped CNN open; ended after the module."""
    r = RemoteSession()
    r.open_model("digits_cnn")
    yield r
    r.close()
    assert not r._child.process.is_alive()
