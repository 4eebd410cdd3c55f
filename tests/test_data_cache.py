"""The parsed-knowledge cache (smtp_tutor/data): used only while it matches its file.

A cache that is missing, stale, corrupt, unreadable, unwritable or being written by another
process at the same moment never changes what is read: the file is parsed again.
"""

from __future__ import annotations

import marshal
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import smtp_tutor.data as data
from smtp_tutor.data import HERE, load_toml, save_cache

NAMES = sorted(p.stem for p in Path(HERE).glob("*.toml"))


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(data, "_unsaved", {})
    return tmp_path / "cache" / "smtp-tutor" / "data"


def parse_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the parses from here on (the real parser still runs)."""
    calls: list[str] = []
    real = data._parse

    def counting(text: str) -> dict[str, object]:
        calls.append(text[:20])
        return real(text)

    monkeypatch.setattr(data, "_parse", counting)
    return calls


def write_file(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sample.toml"
    path.write_text(text, "utf-8")
    return path


@pytest.mark.pure
def test_every_data_file_reads_the_same_parsed_or_cached(
    cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert len(NAMES) >= 15
    expected = {n: tomllib.loads(Path(HERE, f"{n}.toml").read_text("utf-8")) for n in NAMES}
    assert {name: load_toml(name) for name in NAMES} == expected
    assert not cache_home.exists()  # reading never writes
    save_cache()
    assert sorted(p.name.split(".")[0] for p in cache_home.iterdir()) == NAMES
    calls = parse_calls(monkeypatch)
    assert {name: load_toml(name) for name in NAMES} == expected
    assert calls == []  # all from the cache
    assert data._unsaved == {}


@pytest.mark.pure
def test_a_changed_file_is_parsed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_file(tmp_path / "copy", 'a = "one"\n')
    assert load_toml("sample", str(path.parent)) == {"a": "one"}
    save_cache()
    calls = parse_calls(monkeypatch)
    assert load_toml("sample", str(path.parent)) == {"a": "one"}
    assert calls == []
    path.write_text('a = "two"\n', "utf-8")  # same size: the mtime (and inode) tell
    os.utime(path, ns=(1, path.stat().st_mtime_ns + 1))
    assert load_toml("sample", str(path.parent)) == {"a": "two"}
    assert len(calls) == 1
    save_cache()
    assert load_toml("sample", str(path.parent)) == {"a": "two"}
    assert len(calls) == 1


@pytest.mark.pure
@pytest.mark.parametrize(
    "damage",
    [
        b"",  # empty
        b"\x00garbage\xff",  # not marshal
        marshal.dumps(42),  # marshal, wrong shape
        marshal.dumps(((0, "other key"), {"a": "stale"})),  # someone else's key
        None,  # a truncated cache: half of a real one
    ],
)
def test_a_damaged_cache_is_ignored(
    damage: bytes | None, tmp_path: Path, cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_file(tmp_path / "copy", 'a = "one"\nb = [1, 2, 3]\n')
    load_toml("sample", str(path.parent))
    save_cache()
    (cache_file,) = cache_home.iterdir()
    whole = cache_file.read_bytes()
    cache_file.write_bytes(whole[: len(whole) // 2] if damage is None else damage)
    calls = parse_calls(monkeypatch)
    assert load_toml("sample", str(path.parent)) == {"a": "one", "b": [1, 2, 3]}
    assert len(calls) == 1
    save_cache()  # repaired
    assert cache_file.read_bytes() == whole


@pytest.mark.pure
def test_an_unreadable_or_unwritable_cache_only_means_parsing(
    tmp_path: Path, cache_home: Path
) -> None:
    path = write_file(tmp_path / "copy", "a = 1\n")
    cache_home.parent.mkdir(parents=True)
    cache_home.write_text("a file where the cache folder should be")
    assert load_toml("sample", str(path.parent)) == {"a": 1}
    save_cache()  # cannot write: no error
    assert cache_home.read_text() == "a file where the cache folder should be"
    cache_home.unlink()
    cache_home.mkdir()
    load_toml("sample", str(path.parent))
    save_cache()
    (cache_file,) = cache_home.iterdir()
    cache_file.unlink()
    cache_file.mkdir()  # unreadable as a file
    assert load_toml("sample", str(path.parent)) == {"a": 1}
    save_cache()  # cannot replace a folder: skipped, no temporary file left behind
    assert [p.name for p in cache_home.iterdir()] == [cache_file.name]


@pytest.mark.pure
def test_a_toml_error_is_a_value_error_and_never_cached(tmp_path: Path, cache_home: Path) -> None:
    path = write_file(tmp_path / "copy", "a = \n")
    with pytest.raises(ValueError):
        load_toml("sample", str(path.parent))
    save_cache()
    assert not cache_home.exists()


WRITER = """
import sys
from smtp_tutor.data import load_toml, save_cache, _unsaved
folder, rounds = sys.argv[1], int(sys.argv[2])
for round in range(rounds):
    assert load_toml("sample", folder) == {"a": "x" * 5000, "n": list(range(300))}
    if not _unsaved:  # read from the cache: write it again anyway, to race the others
        import smtp_tutor.data as d
        where = d._cache_file("sample", folder)
        d._unsaved["sample"] = (where, open(where, "rb").read())
    save_cache()
"""


def test_processes_writing_the_cache_at_once_never_give_a_wrong_read(
    tmp_path: Path, cache_home: Path
) -> None:
    path = write_file(tmp_path / "copy", f'a = "{"x" * 5000}"\nn = {list(range(300))}\n')
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path.parent), "60"], env=env)
        for _ in range(4)
    ]
    assert all(writer.wait(timeout=120) == 0 for writer in writers)
    expected = Path(data._cache_file("sample", str(path.parent))).name
    assert [p.name for p in cache_home.iterdir()] == [expected]  # no temporary file left
