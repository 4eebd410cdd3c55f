#!/usr/bin/env python3
"""Print a pip constraints file pinning every runtime dependency to its floor in pyproject.

`.ci/run` installs the package with it into a second venv and runs the tests there, so the
lowest versions pyproject.toml allows are the ones CI has tried. The pins are read from
[project].dependencies each time, so they cannot drift from what the package declares; a
dependency without a `>=` floor is an error (it could not be tested at its lowest).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

_REQUIREMENT = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*)(;.*)?")


def floors(pyproject: Path) -> list[str]:
    with pyproject.open("rb") as handle:
        dependencies = tomllib.load(handle)["project"]["dependencies"]
    pins = []
    for requirement in dependencies:
        match = _REQUIREMENT.fullmatch(requirement)
        specifiers = [s.strip() for s in match.group(3).split(",")] if match else []
        lowest = [s[2:].strip() for s in specifiers if s.startswith(">=")]
        if match is None or len(lowest) != 1:
            sys.exit(f"{pyproject}: {requirement!r} has no single '>=' floor to test")
        marker = match.group(4) or ""
        pins.append(f"{match.group(1)}=={lowest[0]}{marker}")
    return pins


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    print("\n".join(floors(Path(sys.argv[1]) if len(sys.argv) > 1 else root / "pyproject.toml")))
