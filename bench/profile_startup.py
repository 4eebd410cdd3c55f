"""Where `smtp-tutor`'s first prompt goes: imports (-X importtime) and calls (cProfile).

Both runs launch the console on its sandbox in a pseudo-terminal (as bench/startup.py does),
wait for the first prompt and type :quit, so shutdown is in the call profile too (it is
small). Prints, in milliseconds:
  * imports: the total, the top-level packages by their own import time summed, and the
    slowest single imports (cumulative and self);
  * calls: the functions with the most cumulative and most own time, and the groups the
    issue names (TOML parsing, regular expression compiling, cryptography, aiosmtpd).
With pyinstrument installed (the `bench` extra), --pyinstrument adds its call tree.

    python bench/profile_startup.py [--top 25] [--pyinstrument] [--command connect HOST PORT]
"""

from __future__ import annotations

import argparse
import collections
import io
import pstats
import re
import sys
import tempfile
from pathlib import Path

from benchlib import PtyConsole, bench_env, smtp_tutor_command

PROMPT = "smtp>"


def run_in_pty(arguments: list[str], env: dict[str, str], stderr: Path | None = None) -> None:
    """`python ARGUMENTS` to its first prompt, then :quit; stderr into a file if given."""
    if stderr is None:
        command = [sys.executable, *arguments]
    else:  # a pty has one output: keep -X importtime's lines off the screen
        command = ["/bin/sh", "-c", 'f="$1"; shift; exec "$@" 2>"$f"', "sh", str(stderr)]
        command += [sys.executable, *arguments]
    console = PtyConsole(command, env)
    try:
        console.wait_for(PROMPT)
    finally:
        console.quit()


def import_summary(text: str, top: int) -> str:
    rows = []
    for line in text.splitlines():
        found = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if found:
            own, cumulative, indent, name = found.groups()
            rows.append((int(own) / 1000, int(cumulative) / 1000, (len(indent) - 1) // 2, name))
    if not rows:
        return "no -X importtime output\n"
    out = io.StringIO()
    total = sum(own for own, _, _, _ in rows)
    out.write(f"imports: {len(rows)} modules, {total:.0f} ms of import time in all\n")
    by_package: collections.Counter[str] = collections.Counter()
    for own, _, _, name in rows:
        first = name.split(".")[0]
        if first == "smtp_tutor":
            first = ".".join(name.split(".")[:2])
        by_package[first] += own
    out.write("  own import time by package (ms):\n")
    for name, own in by_package.most_common(top):
        out.write(f"    {own:7.1f}  {name}\n")
    out.write("  slowest imports, cumulative (ms; depth 0 = imported by the program itself):\n")
    for own, cumulative, depth, name in sorted(rows, key=lambda r: -r[1])[:top]:
        out.write(f"    {cumulative:7.1f}  (own {own:5.1f})  depth {depth}  {name}\n")
    return out.getvalue()


def call_summary(path: Path, top: int) -> str:
    stats = pstats.Stats(str(path))
    out = io.StringIO()
    entries = stats.stats  # type: ignore[attr-defined]
    total = max(cumulative for (_, _, _, cumulative, _) in entries.values())

    def name(key: tuple[str, int, str]) -> str:
        file, line, function = key
        short = re.sub(r".*/(site-packages|lib/python3\.\d+)/", "", file)
        short = re.sub(r".*/smtp_tutor/", "smtp_tutor/", short)
        return f"{short}:{line}({function})"

    out.write(
        f"calls: {total * 1000:.0f} ms in the profiled run, launch to :quit (cProfile slows it)\n"
    )
    for title, index in (("cumulative", 3), ("own", 2)):
        out.write(f"  top {top} by {title} time (ms, calls):\n")
        ordered = sorted(entries.items(), key=lambda item: -item[1][index])
        for key, (_, calls, own, cumulative, _) in ordered[:top]:
            value = cumulative if index == 3 else own
            out.write(f"    {value * 1000:7.1f}  {calls:7d}  {name(key)}\n")
    groups = {
        "tomllib.loads (TOML parsing)": ("tomllib/_parser.py", "loads"),
        "re compile (re._compile)": ("re/__init__.py", "_compile"),
        "asyncio.run": ("asyncio/runners.py", "run"),
        "PromptSession.__init__": ("shortcuts/prompt.py", "__init__"),
    }
    out.write("  named groups (cumulative ms, calls):\n")
    for label, (file, function) in groups.items():
        hits = [
            (v[3], v[1]) for k, v in entries.items() if k[0].endswith(file) and k[2] == function
        ]
        out.write(
            f"    {sum(h[0] for h in hits) * 1000:7.1f}  {sum(h[1] for h in hits):7d}  {label}\n"
        )
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--pyinstrument", action="store_true")
    parser.add_argument(
        "--command", nargs="*", default=[], help="smtp-tutor arguments (default: none)"
    )
    args = parser.parse_args()
    # The console script, not `-m smtp_tutor`: -m would put the current directory first on
    # sys.path, and a checkout there would shadow the installed package being profiled.
    program = [*smtp_tutor_command(), *args.command]
    if program[0] == sys.executable:
        program = program[1:]
    with tempfile.TemporaryDirectory() as home:
        env = bench_env(home)
        run_in_pty(program, env)  # warm-up: the sandbox certificate, byte code
        importtime = Path(home) / "importtime.txt"
        run_in_pty(["-X", "importtime", *program], env, stderr=importtime)
        print(import_summary(importtime.read_text("utf-8", "replace"), args.top))
        profile = Path(home) / "startup.prof"
        run_in_pty(["-m", "cProfile", "-o", str(profile), *program], env)
        print(call_summary(profile, args.top))
        if args.pyinstrument:
            tree = Path(home) / "pyinstrument.txt"
            run_in_pty(
                ["-m", "pyinstrument", "-o", str(tree), "-r", "text", *program],
                env,
            )
            print(tree.read_text("utf-8", "replace") if tree.exists() else "no pyinstrument output")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
