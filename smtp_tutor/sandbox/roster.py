"""A class's accounts: generated (`serve --class N`) or named in a roster file (`--roster`).

Passwords are generated with `secrets`, from letters and digits that cannot be mistaken for
one another when read off a sheet of paper (no 0/O, 1/l/I). The teacher gets them once:
printed at start and written to a CSV file that only its owner can read (0600), to hand out.
"""

from __future__ import annotations

import csv
import io
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["generated_accounts", "read_roster", "write_accounts_csv"]

ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
PASSWORD_LENGTH = 10
MAX_CLASS = 1000
ROSTER_LIMIT = 1024 * 1024  # bytes of a roster file read


def new_password() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(PASSWORD_LENGTH))


def generated_accounts(count: int, taken: Iterable[str] = ()) -> dict[str, str]:
    """student01 … studentNN (skipping names already taken), each with a fresh password."""
    if not 1 <= count <= MAX_CLASS:
        raise ValueError(f"--class takes 1 to {MAX_CLASS} accounts, not {count}")
    width = max(2, len(str(count)))
    used = set(taken)
    accounts: dict[str, str] = {}
    number = 0
    while len(accounts) < count:
        number += 1
        name = f"student{number:0{width}d}"
        if name not in used:
            accounts[name] = new_password()
    return accounts


def read_roster(path: Path) -> dict[str, str]:
    """One name a line (the first CSV column; blank lines and `#` comments skipped)."""
    try:
        with path.open("rb") as file:
            data = file.read(ROSTER_LIMIT + 1)
    except OSError as error:
        raise ValueError(f"cannot read the roster {path}: {error.strerror or error}") from error
    if len(data) > ROSTER_LIMIT:
        raise ValueError(f"the roster {path} is bigger than {ROSTER_LIMIT} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"the roster {path} is not UTF-8 text") from error
    accounts: dict[str, str] = {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), 1):
        name = row[0].strip() if row else ""
        if not name or name.startswith("#") or (number == 1 and name.lower() == "name"):
            continue
        if ":" in name or any(c.isspace() or not c.isprintable() for c in name):
            raise ValueError(f"{path}:{number}: {name!r} cannot be an account name")
        if name in accounts:
            raise ValueError(f"{path}:{number}: {name!r} is named twice")
        accounts[name] = new_password()
    if not accounts:
        raise ValueError(f"the roster {path} names nobody")
    if len(accounts) > MAX_CLASS:
        raise ValueError(f"the roster {path} names more than {MAX_CLASS} accounts")
    return accounts


def write_accounts_csv(path: Path, accounts: Mapping[str, str]) -> None:
    """name,password per line, in a file only its owner can read, replaced atomically."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["name", "password"])
    for name, password in accounts.items():
        writer.writerow([name, password])
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(out.getvalue())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
