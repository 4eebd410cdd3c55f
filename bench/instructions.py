"""Instructions to the console's first prompt, counted by valgrind: a start-up A/B without noise.

Wall-clock start-up figures (bench/startup.py) swing by ±20 % on a loaded two-core machine,
and this one's CPU speed itself changed 2× from one second to the next, so a change worth
1-3 % cannot be seen there. Valgrind's instruction count (cachegrind, no cache model) of
the same launch moves by about 0.1 % between runs: it tells whether a change removed work,
not how long the work takes. Each installed smtp-tutor (a venv's) is launched in a
pseudo-terminal until its first prompt, then quit; the first launch of each makes the
caches (bytecode, parsed knowledge) and is not counted.

    python bench/instructions.py VENV [VENV ...] [--connect] [--rounds 2]

The console on the sandbox shows two processes: the console and its sandbox child (a fork,
so its count includes what the two did before the fork). With --connect, the console on a
bench sink server. Needs `valgrind` (apt-get install valgrind).
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from benchlib import PtyConsole, bench_env, start_bench_server


def count(venv: Path, home: str, rounds: int, server: object | None) -> list[list[float]]:
    """Millions of instructions per process, one list per counted launch."""
    out = tempfile.mkdtemp(prefix="smtp-tutor-cg-")
    counted: list[list[float]] = []
    try:
        for launch in range(rounds + 1):
            for old in glob.glob(f"{out}/cg.*"):
                os.unlink(old)
            command = [
                "valgrind",
                "--tool=cachegrind",
                "--cache-sim=no",
                f"--cachegrind-out-file={out}/cg.%p",
                str(venv / "bin" / "python"),
                str(venv / "bin" / "smtp-tutor"),
            ]
            if server is not None:
                command += ["connect", server.host, str(server.port)]  # type: ignore[attr-defined]
            console = PtyConsole(command, bench_env(home), timeout=180)
            console.wait_for("smtp>")
            console.quit()
            if launch == 0:
                continue
            per_process = []
            for path in sorted(glob.glob(f"{out}/cg.*"), key=lambda p: int(p.rsplit(".", 1)[1])):
                found = re.search(r"^summary:\s+(\d+)", Path(path).read_text(), re.MULTILINE)
                if found:
                    per_process.append(int(found[1]) / 1e6)
            counted.append(per_process)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return counted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("venvs", nargs="+", type=Path, metavar="VENV")
    parser.add_argument("--connect", action="store_true", help="a console on a sink server")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("instructions.py: valgrind is not installed", file=sys.stderr)
        return 2
    first: float | None = None
    with tempfile.TemporaryDirectory() as home:
        server = start_bench_server("sink", bench_env(home)) if args.connect else None
        try:
            for venv in args.venvs:
                runs = count(venv, home, args.rounds, server)
                console = statistics.median(run[0] for run in runs)
                child = [run[1] for run in runs if len(run) > 1]
                first = console if first is None else first
                shown = f"{venv}: console {console:.1f} M instructions ({console / first:.3f}×)"
                if child:
                    shown += f", sandbox child {statistics.median(child):.1f} M"
                print(shown, flush=True)
        finally:
            if server is not None:
                server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
