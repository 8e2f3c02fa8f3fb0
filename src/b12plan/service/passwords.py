"""The password rule: at least 12 characters and not a common password (NIST SP 800-63B 5.1.1.2).

The list is the 10,000 most common passwords shipped in ``data/common-passwords.txt`` (its
header names the source). A password is refused when, lower-cased, it is on the list, when it is
a listed password with digits or punctuation added at the end (``password2024!``), or when it
is one short piece repeated (``abcabcabcabc``). There is no composition rule (NIST advises
against them); length and the list do the work.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

MIN_LENGTH = 12
MAX_LENGTH = 256
_TAIL = re.compile(r"[\d\W_]+$")


@functools.cache
def common_passwords() -> frozenset[str]:
    text = resources.files("b12plan.service").joinpath("data/common-passwords.txt").read_text()
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def password_problem(password: str) -> str | None:
    """Why ``password`` is refused, or None when it may be used."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    lowered = password.lower()
    common = common_passwords()
    stem = _TAIL.sub("", lowered)
    if lowered in common or (stem != lowered and stem in common):
        return "is one of the most common passwords; choose a longer, unusual phrase"
    for size in range(1, len(lowered) // 2 + 1):
        if len(lowered) % size == 0 and lowered[:size] * (len(lowered) // size) == lowered:
            return "is one short piece repeated; choose a longer, unusual phrase"
    return None
