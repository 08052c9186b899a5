"""One typed session API: the in-process session and the compute-process proxy both
implement every method of :class:`core.api.SessionAPI`, with the same signatures."""

import inspect

from core.api import SessionAPI, api_methods
from core.remote import RemoteSession
from core.session import Session


def _public(cls) -> set[str]:
    return {name for name, value in vars(cls).items()
            if callable(value) and not name.startswith("_")}


def test_both_sessions_define_every_protocol_method_themselves():
    wanted = set(api_methods())
    assert len(wanted) >= 15
    # Defined in the class itself: not inherited as the protocol's empty stub.
    assert wanted <= _public(Session), wanted - _public(Session)
    assert wanted <= _public(RemoteSession), wanted - _public(RemoteSession)


def test_signatures_match_the_protocol():
    for name in api_methods():
        want = inspect.signature(getattr(SessionAPI, name))
        for cls in (Session, RemoteSession):
            got = inspect.signature(getattr(cls, name))
            assert list(got.parameters) == list(want.parameters), (cls.__name__, name)
            for param, spec in want.parameters.items():
                assert got.parameters[param].default == spec.default, (cls, name, param)
            assert got.return_annotation == want.return_annotation, (cls.__name__, name)


def test_remote_has_no_calls_outside_the_protocol():
    extra = _public(RemoteSession) - set(api_methods()) - {"close", "pid"}
    assert not extra, extra


def test_sessions_are_instances_of_the_protocol():
    assert isinstance(Session(), SessionAPI)
