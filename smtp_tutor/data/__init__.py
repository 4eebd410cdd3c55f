"""The knowledge and every UI text as TOML files (en + zh), and `load_toml` to read them.

Parsing them all with tomllib costs about 60 ms, a third of a first prompt, so a parsed
file is kept in the user's cache folder (`paths.cache_dir()`, marshal) and used while it
matches the file: same path, size, modification time and inode, same package and Python
version. A missing, stale, corrupt, unreadable or half-written cache only means parsing
again. Reading never writes: `save_cache()` writes what this process had to parse, each
file by a rename so a concurrent reader sees the old cache or the new one, never half of
one; the command line calls it on its way out. Imports only the support layer.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import sys

from smtp_tutor import __version__

TYPE_CHECKING = False  # typing is not imported at run time: see core/records.py
if TYPE_CHECKING:
    from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
_FORMAT = 1  # bump when what is stored changes shape
_SUFFIX = f".{sys.implementation.cache_tag}.marshal"  # marshal's format follows Python's

#: name → (cache file, its bytes) for each file parsed since the last save_cache().
_unsaved: dict[str, tuple[str, bytes]] = {}


def load_toml(name: str, directory: str = HERE) -> dict[str, Any]:
    """`directory/name.toml` parsed; raises OSError, or ValueError for a TOML error.

    From the cache when it matches the file; a file that is not on disk (a zip install)
    is read through importlib.resources and not cached.
    """
    path = os.path.join(directory, f"{name}.toml")
    try:
        stat = os.stat(path)
    except OSError:
        if directory != HERE:
            raise
        return _parse(_resource_text(name))
    key = (_FORMAT, __version__, path, stat.st_size, stat.st_mtime_ns, stat.st_ino)
    where = _cache_file(name, directory)
    cached = _read_cache(where, key)
    if cached is not None:
        return cached
    with open(path, encoding="utf-8") as file:
        data = _parse(file.read())
    with contextlib.suppress(ValueError):  # a value marshal cannot store (a date): not cached
        _unsaved[name if directory == HERE else path] = (where, marshal.dumps((key, data)))
    return data


def save_cache() -> None:
    """Write what was parsed since the last call; a cache that cannot be written is skipped."""
    pending = list(_unsaved.items())
    _unsaved.clear()
    for _name, (where, payload) in pending:
        temporary = f"{where}.{os.getpid()}.{id(payload):x}.tmp"
        try:
            os.makedirs(os.path.dirname(where), exist_ok=True)
            with open(temporary, "wb") as file:
                file.write(payload)
            os.replace(temporary, where)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temporary)


def _cache_file(name: str, directory: str) -> str:
    from smtp_tutor.paths import cache_dir  # here: a zip install (no files, no cache) has no paths

    folder = os.path.join(cache_dir(), "data")
    if directory != HERE:  # a copy of the data (tests, a teacher's edit): its own file
        import hashlib

        name += "-" + hashlib.sha256(os.path.abspath(directory).encode()).hexdigest()[:16]
    return os.path.join(folder, name + _SUFFIX)


def _read_cache(where: str, key: tuple[object, ...]) -> dict[str, Any] | None:
    try:
        with open(where, "rb") as file:
            stored = marshal.loads(file.read())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if type(stored) is tuple and len(stored) == 2 and stored[0] == key:
        data = stored[1]
        if type(data) is dict:
            return data
    return None


def _parse(text: str) -> dict[str, Any]:
    import tomllib  # 7 ms to import: only when a file really has to be parsed

    return tomllib.loads(text)


def _resource_text(name: str) -> str:
    from importlib import resources

    return resources.files(__name__).joinpath(f"{name}.toml").read_text("utf-8")
