"""What every message about a user's file must be: one sentence for a newcomer that
names the file and says what is wrong, with no raw error text."""

from __future__ import annotations

import re

#: What must never reach the user: exception class names and raw framework text.
RAW = re.compile(r"\w+(Error|Exception|Warning)\b|Error:|Traceback|ScalarType|errno")


def assert_readable(message: str, name: str) -> None:
    """Names ``name``, gives a reason, ends as a sentence, holds no raw error text."""
    assert name in message, message
    assert not RAW.search(message), f"raw error text reaches the user: {message}"
    assert message.endswith(".") and len(message.split()) >= 6, message
