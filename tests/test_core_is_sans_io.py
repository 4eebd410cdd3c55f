"""The protocol core does no I/O: no network, event loop or UI code in it or under it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import smtp_tutor.core

CORE = Path(smtp_tutor.core.__file__).parent
# Loaded by importing the core. (The email package's utils import `socket` for
# make_msgid's host name, so `socket` itself is checked in the sources instead.)
NOT_LOADED = ["aiosmtpd", "asyncio", "prompt_toolkit", "ssl"]
NOT_IMPORTED = re.compile(r"^\s*(?:import|from)\s+(socket|ssl|asyncio|selectors|prompt_toolkit)\b")


def core_modules() -> list[str]:
    """Every module of the core, its subpackages (pop3) included."""
    names = (".".join(p.relative_to(CORE).with_suffix("").parts) for p in CORE.rglob("*.py"))
    return sorted(f"smtp_tutor.core.{name}".removesuffix(".__init__") for name in names)


def test_importing_every_core_module_loads_no_event_loop_tls_or_ui() -> None:
    modules = core_modules()
    # The lesson modules are moving into core/lessons/: either layout is the whole core.
    judge = {"smtp_tutor.core.lesson_judge", "smtp_tutor.core.lessons.judge"}
    assert judge & set(modules) and len(modules) >= 15
    assert "smtp_tutor.core.pop3.dialogue" in modules and "smtp_tutor.core.pop3" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(sorted(set({NOT_LOADED!r}) & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


def test_no_core_module_imports_sockets_itself() -> None:
    found = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(CORE.rglob("*.py"))
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1)
        if NOT_IMPORTED.match(line)
    ]
    assert found == []


# What writes, moves or removes a file. Reading a data or lesson file is the core's business;
# changing the disk is the layer above's (the recorder renders, console/files.py writes).
WRITES_FILES = re.compile(
    r"\b(?:os\.(?:replace|rename|remove|unlink|makedirs|mkdir|fdopen)|tempfile|shutil)\b"
    r"|\.(?:write_text|write_bytes|unlink|mkdir|touch)\("
    r"|\bopen\([^)]*['\"][wax]b?\+?['\"]"
)


def test_no_core_module_writes_a_file() -> None:
    found = [
        f"{path.relative_to(CORE)}:{number}: {line.strip()}"
        for path in sorted(CORE.rglob("*.py"))
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1)
        if WRITES_FILES.search(line) and not line.lstrip().startswith("#")
    ]
    assert found == []


def test_the_write_check_sees_the_writes_it_names() -> None:
    """The pattern would catch what the old core did (progress.py saved itself)."""
    for line in (
        "os.replace(temporary, self.path)",
        "with os.fdopen(fd, 'w') as file:",
        "fd, temporary = tempfile.mkstemp(dir=self.path.parent)",
        "path.write_text(text)",
        "with open(path, 'w', encoding='utf-8') as f:",
        'open(path, "ab")',
    ):
        assert WRITES_FILES.search(line), line
    for line in ("path.read_text('utf-8')", "open(path, 'rb')", "text.replace('a', 'b')"):
        assert not WRITES_FILES.search(line), line
