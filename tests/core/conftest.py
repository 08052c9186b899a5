import pytest

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
