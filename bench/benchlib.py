"""What bench/startup.py and bench/replay.py share: commands, servers, a console in a pty, figures.

A figure is one number with its label, unit, samples and target (an upper bound). A run's
figures print as one table with the load average before and after, and `--json FILE` saves
them under the script's section (``startup``, ``replay``) of FILE, keeping the other
sections, so both scripts can write one baseline. `--compare OLD.json` prints the same
figures from OLD beside the new ones ("before / after").
"""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

BENCH = Path(__file__).resolve().parent
START_TIMEOUT = 30.0

#: prompt_toolkit turns bracketed paste on when a prompt starts and off when it ends: the
#: one reliable mark, in a pty, that a typed line was taken and that a new prompt is up.
PROMPT_BEGINS = "\x1b[?2004h"
PROMPT_ENDS = "\x1b[?2004l"
PROMPT = "smtp>"


def smtp_tutor_command() -> list[str]:
    script = shutil.which("smtp-tutor", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "smtp_tutor"]


def peer_command(name: str) -> list[str] | None:
    """A peer installed in the same venv (the `bench` extra), else None."""
    script = shutil.which(name, path=str(Path(sys.executable).parent))
    return [script] if script else None


def bench_env(home: str) -> dict[str, str]:
    """A fresh user: no config, history or data of the person running the bench.

    No PYTHON* variable either: PYTHONDONTWRITEBYTECODE (set in some shells and CI) would
    make every launch compile smtp_tutor from source again, PYTHONUNBUFFERED would change
    how output is written; a user who installed the package has neither.
    """
    kept = {name: value for name, value in os.environ.items() if not name.startswith("PYTHON")}
    return dict(
        kept,
        PROMPT_TOOLKIT_NO_CPR="1",
        TERM="xterm",
        NO_COLOR="1",
        LANG="C.UTF-8",
        XDG_DATA_HOME=f"{home}/data",
        XDG_STATE_HOME=f"{home}/state",
        XDG_CONFIG_HOME=f"{home}/config",
        XDG_CACHE_HOME=f"{home}/cache",
    )


def load_average() -> list[float] | None:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:  # not on this system
        return None


def describe_load(load: list[float] | None) -> str:
    return ", ".join(f"{value:.2f}" for value in load) if load else "unknown"


# -- servers in their own processes -------------------------------------------------------


class ServerProcess:
    """A server started with `command` that prints ``listening on HOST:PORT``."""

    def __init__(self, name: str, command: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        seen: list[str] = []
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            seen.append(line)
            found = re.search(r"listening on ([0-9.]+):([0-9]+)", line)
            if found:
                self.host, self.port = found.group(1), int(found.group(2))
                drain(self.process.stdout)
                return
        self.stop()
        raise RuntimeError(f"{name} did not start:\n{''.join(seen)}")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def drain(stream: IO[str]) -> None:
    """Read and drop what a server still prints, in a thread: a pipe nobody reads fills up
    (64 KiB) and the server then blocks on its next line — `serve` logs every message."""
    threading.Thread(target=lambda: collections.deque(stream, maxlen=0), daemon=True).start()


def start_bench_server(kind: str, env: dict[str, str], *extra: str) -> ServerProcess:
    """bench/servers.py `sink` (aiosmtpd's bare Sink) or `fake` (huge replies)."""
    command = [sys.executable, str(BENCH / "servers.py"), kind, *extra]
    return ServerProcess(kind, command, {**env, "PYTHONUNBUFFERED": "1"})


def start_sandbox(env: dict[str, str], mailbox: Path) -> ServerProcess:
    """`smtp-tutor serve --port 0` in its own process."""
    command = [*smtp_tutor_command(), "serve", "--port", "0", "--mailbox", str(mailbox), "-q"]
    return ServerProcess("smtp-tutor serve", command, env)


@contextmanager
def servers(*started: ServerProcess) -> Iterator[None]:
    try:
        yield
    finally:
        for server in started:
            server.stop()


def time_command(command: list[str], env: dict[str, str]) -> float:
    """Launch to exit, output discarded; a failing command fails the bench."""
    start = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{command} failed ({done.returncode}): {done.stderr.decode()}")
    return elapsed


# -- a console in a pseudo-terminal ------------------------------------------------------


class PtyConsole:
    """smtp-tutor (or any prompt_toolkit program) in a pty, as a person at a terminal sees it.

    Only `expect_exact` is used: with a literal pattern pexpect searches the new output
    alone (plus the pattern's length), so ten thousand lines on screen cost no quadratic
    search in the measuring process.
    """

    def __init__(self, command: list[str], env: dict[str, str], timeout: float = 60) -> None:
        import pexpect

        self.started = time.perf_counter()
        self.child = pexpect.spawn(
            command[0],
            command[1:],
            env=env,
            encoding="utf-8",
            codec_errors="replace",
            timeout=timeout,
            dimensions=(40, 120),
            maxread=1 << 16,
        )
        self.child.delaybeforesend = None  # pexpect sleeps 50 ms before each send otherwise

    def wait_for(self, text: str) -> float:
        """Seconds from launch until `text` is on screen."""
        self.child.expect_exact(text)
        return time.perf_counter() - self.started

    def command(self, line: str, prompt: str = PROMPT) -> tuple[float, str]:
        """Type `line` and Enter; seconds until the next prompt is up, and what was shown."""
        start = time.perf_counter()
        self.child.sendline(line)
        self.child.expect_exact(PROMPT_ENDS)
        self.child.expect_exact(PROMPT_BEGINS)
        shown = self.child.before
        self.child.expect_exact(prompt)
        return time.perf_counter() - start, shown

    def quit(self, line: str = ":quit") -> None:
        import pexpect

        try:
            self.child.sendline(line)
            self.child.expect_exact(pexpect.EOF, timeout=10)
        except (pexpect.TIMEOUT, pexpect.EOF, OSError):
            pass
        finally:
            self.child.close(force=True)

    def close(self) -> None:
        self.child.close(force=True)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat[1]) == pid:
            found.append(int(entry.name))
    return found


def _is_python(pid: int) -> bool:
    try:
        exe = os.path.basename(os.path.realpath(f"/proc/{pid}/exe"))
    except OSError:
        return False
    return exe.startswith("python")


def python_process(pid: int) -> int:
    """The Python process running smtp-tutor: `pid` itself, or the first Python below it.

    The console script's shebang execs Python directly, but a wrapper (a shell, `uv run`,
    a launcher) would be `pid` itself; its Python child is what uses the memory.
    """
    queue = [pid]
    while queue:
        current = queue.pop(0)
        if _is_python(current):
            return current
        queue.extend(_children(current))
    raise RuntimeError(f"no Python process at or under {pid}")


def rss_mb(pid: int) -> float:
    """VmRSS of `pid` in MB as /proc counts them: its "kB" are KiB, so MB here are MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


# -- figures, the table, JSON and before / after -----------------------------------------


@dataclass
class Figure:
    key: str
    label: str
    unit: str  # "s", "ms", "MB", "x" (a ratio)
    value: float  # the figure judged: a median, a p99, a ratio of medians
    samples: list[float] = field(default_factory=list)
    target: float | None = None  # an upper bound
    note: str = ""

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.value <= self.target


def median_figure(
    key: str, label: str, unit: str, samples: list[float], target: float | None = None, note=""
) -> Figure:
    return Figure(key, label, unit, statistics.median(samples), samples, target, note)


def percentile(values: Iterable[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest value with at least `fraction` of all at or below."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "MB":
        return f"{value:.1f} MB"
    if unit == "x":
        return f"{value:.2f}×"
    return f"{value:g} {unit}"


def verdict(met: bool | None) -> str:
    return "" if met is None else ("met" if met else "MISSED")


def print_table(title: str, header: dict, figures: list[Figure]) -> None:
    width = max(len(f.label) for f in figures) + 2
    print(title)
    print(f"  {header['when']}; Python {header['python']}, {header['cpus']} CPUs; {header['what']}")
    print(f"  smtp_tutor measured: {header['tree']}")
    print(
        f"  load average (1, 5, 15 min): before {describe_load(header['load_before'])}, "
        f"after {describe_load(header['load_after'])}"
    )
    print(f"  {'what':{width}} {'figure':>10}  {'min … max':>19}  {'target':>11}  verdict")
    for figure in figures:
        spread = ""
        if len(figure.samples) > 1:
            low, high = min(figure.samples), max(figure.samples)
            spread = f"{fmt(low, figure.unit)} … {fmt(high, figure.unit).split()[0]}"
        target = f"≤ {fmt(figure.target, figure.unit)}" if figure.target is not None else ""
        print(
            f"  {figure.label:{width}} {fmt(figure.value, figure.unit):>10}  {spread:>19}  "
            f"{target:>11}  {verdict(figure.met)}"
        )
        if figure.note:
            print(f"  {'':{width}}   {figure.note}")


def measured_tree() -> str:
    """Which smtp_tutor the venv runs: its folder and git revision (or a REVISION file)."""
    done = subprocess.run(
        [sys.executable, "-c", "import smtp_tutor; print(smtp_tutor.__file__)"],
        capture_output=True,
        text=True,
        cwd="/",
    )
    if done.returncode != 0:
        return "unknown"
    tree = Path(done.stdout.strip()).parent.parent

    def git(*words: str) -> str:
        run = subprocess.run(["git", "-C", str(tree), *words], capture_output=True, text=True)
        return run.stdout.strip() if run.returncode == 0 else ""

    revision = git("rev-parse", "--short", "HEAD")
    if revision:
        dirty = git("status", "--porcelain", "--", "smtp_tutor")
        return f"{tree} at {revision}" + (" with smtp_tutor/ changed" if dirty else "")
    marker = tree / "REVISION"
    if marker.exists():
        return f"{tree}, an export of {marker.read_text().strip()[:12]}"
    return str(tree)


def header(what: str, rounds: int, load_before, load_after) -> dict:
    return {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "tree": measured_tree(),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "rounds": rounds,
        "what": what,
        "load_before": load_before,
        "load_after": load_after,
    }


def save_json(path: Path, section: str, head: dict, figures: list[Figure]) -> None:
    """Write `figures` under `section` of `path`, keeping any other section already there."""
    try:
        data = json.loads(path.read_text("utf-8"))
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    data[section] = {
        **head,
        "figures": [{**asdict(f), "met": f.met} for f in figures],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", "utf-8")
    print(f"saved to {path} [{section}]")


def print_compare(path: Path, section: str, figures: list[Figure]) -> None:
    """The new figures beside those saved in `path` (before / after)."""
    try:
        old = json.loads(path.read_text("utf-8"))[section]
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"--compare {path}: no [{section}] figures there ({error})")
        return
    before = {f["key"]: f for f in old.get("figures", [])}
    width = max(len(f.label) for f in figures) + 2
    print(
        f"before / after: before = {path} ({old.get('when', '?')}, load before "
        f"{describe_load(old.get('load_before'))}, after {describe_load(old.get('load_after'))})"
    )
    print(
        f"  {'what':{width}} {'before':>10}  {'after':>10}  {'after/before':>12}  "
        f"{'target':>11}  verdict"
    )
    for figure in figures:
        was = before.get(figure.key)
        old_value = was["value"] if was else None
        change = f"{figure.value / old_value:.2f}×" if old_value else ""
        target = f"≤ {fmt(figure.target, figure.unit)}" if figure.target is not None else ""
        print(
            f"  {figure.label:{width}} {fmt(old_value, figure.unit):>10}  "
            f"{fmt(figure.value, figure.unit):>10}  {change:>12}  {target:>11}  "
            f"{verdict(figure.met)}"
        )
