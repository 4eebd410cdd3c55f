"""Start-up, memory and typing latency of smtp-tutor, beside its peers, in one run.

Every figure is the median of --rounds rounds (7) taken in turn — each round runs every
measure once, in forward order on even rounds and backward on odd ones — so a slow moment
of the machine hits us and the peers alike. The load average is printed before and after.
Targets (issue 12) are printed beside each figure.

In a pseudo-terminal (pexpect, 120×40, TERM=xterm, PROMPT_TOOLKIT_NO_CPR=1, a fresh
XDG home), from launch until it is on screen:
  * `smtp-tutor` (embedded sandbox, connected) → its 220 greeting, and → the first prompt;
  * ptpython (the `bench` extra) → its `>>>`, and the ratio of the medians;
  * `smtp-tutor connect 127.0.0.1 PORT` to aiosmtpd's bare Sink (bench/servers.py, its own
    process) → the first prompt.
As plain commands, launch to exit: `smtp-tutor explain 550`, `smtp-tutor --version`, and
bare `python -c pass` as the floor.

Memory: the console on its sandbox in a pty, after EHLO, STARTTLS, EHLO (each line typed,
then wait for the next prompt): VmRSS of the Python process running smtp-tutor (the pexpect
child itself, or the first Python below it if a wrapper ever sits in between).

Typing, with a huge reply on screen (bench/servers.py `fake`, its own process):
  * completion per keystroke — in-process, in a fresh interpreter per round: a real
    `Console` (pipe input, dummy output) builds its prompts, so its completer is the one
    the console wires up; a real `Dialogue` is fed the greeting and the 100,000-line EHLO
    reply through `ReplyParser` (the bytes the fake server sends); 1,000 addresses go in as
    500 MAIL FROM and 500 RCPT TO lines through `Console.addresses.learn`, each sent on the
    dialogue and answered 250 (then RSET), as typed lines are. Then each prefix of some
    typical lines (EHLO, MAIL with parameters, RCPT with NOTIFY=, AUTH, VRFY, :explain, and
    To:/From:/Subject:/Date: headers in DATA) is one keystroke: the time of
    `get_completions(Document(prefix), CompleteEvent(completion_requested=True))`, the list
    consumed, as Tab asks. The target is the p99 over every keystroke of every round; the
    toolbar (drawn on every redraw) is timed beside it, and each session's slowest keystroke
    (the first that needs the knowledge base pays for loading it) is shown with its text.
  * printing a 10,000-line reply — in a pty: on `smtp-tutor connect` to the fake server,
    after EHLO (100,000 lines, timed too), `HELP` + Enter until the next prompt is up. The
    same reply into a PlainTextOutput in-process (parse, dialogue, `Console._on_event`) is
    shown beside it.

    python bench/startup.py [--rounds 7] [--json FILE] [--compare OLD.json]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchlib import (
    Figure,
    PtyConsole,
    ServerProcess,
    bench_env,
    header,
    load_average,
    median_figure,
    peer_command,
    percentile,
    print_compare,
    print_table,
    python_process,
    rss_mb,
    save_json,
    servers,
    smtp_tutor_command,
    start_bench_server,
    time_command,
)

TARGET_PROMPT = 0.25
TARGET_PROMPT_RATIO = 0.7
TARGET_CONNECT = 0.20
TARGET_EXPLAIN = 0.10
TARGET_VERSION = 0.08
TARGET_RSS = 60.0
TARGET_COMPLETION_P99_MS = 20.0
TARGET_PRINT = 0.5

EHLO_LINES = 100_000
HELP_LINES = 10_000
ADDRESSES = 1_000


# -- in a pseudo-terminal ----------------------------------------------------------------


def time_to_greeting(env: dict[str, str]) -> tuple[float, float]:
    """`smtp-tutor`: seconds to the sandbox's 220 on screen, and to the first prompt."""
    console = PtyConsole(smtp_tutor_command(), env)
    try:
        greeting = console.wait_for("220 ")
        prompt = console.wait_for("smtp>")
    finally:
        console.quit()
    return greeting, prompt


def time_ptpython(command: list[str], env: dict[str, str]) -> float:
    console = PtyConsole(command, env)
    try:
        return console.wait_for(">>>")
    finally:
        console.child.sendcontrol("d")  # ptpython asks "Do you really want to exit?"
        console.quit("y")


def time_connect(server: ServerProcess, env: dict[str, str]) -> float:
    command = [*smtp_tutor_command(), "connect", server.host, str(server.port)]
    console = PtyConsole(command, env)
    try:
        console.wait_for("220 ")
        return console.wait_for("smtp>")
    finally:
        console.quit()


def rss_after_starttls(env: dict[str, str]) -> float:
    console = PtyConsole(smtp_tutor_command(), env)
    try:
        console.wait_for("smtp>")
        for line in ("EHLO bench.example", "STARTTLS", "EHLO bench.example"):
            console.command(line)
        return rss_mb(python_process(console.child.pid))
    finally:
        console.quit()


def print_in_pty(server: ServerProcess, env: dict[str, str]) -> tuple[float, float, int]:
    """EHLO (huge) then HELP (10,000 lines): seconds to the next prompt, and lines shown."""
    command = [*smtp_tutor_command(), "connect", server.host, str(server.port)]
    console = PtyConsole(command, env)
    try:
        console.wait_for("smtp>")
        ehlo, _ = console.command("EHLO bench.example")
        help_time, shown = console.command("HELP")
        lines = shown.count("help line ") + shown.count("end of help")
        return ehlo, help_time, lines
    finally:
        console.quit()


# -- in-process, in a fresh interpreter (--worker) ---------------------------------------

READY_LINES = (
    "EHLO bench.example",
    "MAIL FROM:<sender12@example.org> SIZE=1000 BODY=8BITMIME",
    "RCPT TO:<rcpt7@example.net> NOTIFY=SUCCESS,FAILURE",
    "AUTH PLAIN",
    "VRFY rcpt3",
    ":explain 550",
)
DATA_LINES = (
    "From: <sender1@example.org>",
    "To: <rcpt2@example.net>",
    "Subject: hello",
    "Date: ",
)


def consoles_completer(console: Any, dialogue: Callable[[], Any]) -> tuple[Any, str]:
    """The completer the console wires up itself, caught as it is made; else one made here.

    The console's internals move (issue 13): whichever method makes its prompts is called,
    and the SMTPCompleter it builds is the one measured. Returns it and how it was found.
    """
    from smtp_tutor.console import completion

    made: list[Any] = []
    original = completion.SMTPCompleter.__init__

    def spy(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        made.append(self)

    for name in ("_open_reader", "_make_prompts"):
        method = getattr(console, name, None)
        if method is None:
            continue
        completion.SMTPCompleter.__init__ = spy  # type: ignore[method-assign]
        try:
            method()
        finally:
            completion.SMTPCompleter.__init__ = original  # type: ignore[method-assign]
        if made:
            return made[-1], f"the console's own (Console.{name})"
    built = completion.SMTPCompleter(dialogue, addresses=console.addresses)
    return built, "built by the bench (no known Console method makes the prompts)"


def typing_worker(ehlo_lines: int, help_lines: int, addresses: int, passes: int) -> dict:
    """Runs in its own interpreter; returns the samples as JSON-able lists."""
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output.plain_text import PlainTextOutput
    from servers import ehlo_reply, help_reply

    from smtp_tutor.console.app import Console, ConsoleOptions
    from smtp_tutor.core.dialogue import Dialogue
    from smtp_tutor.core.replies import ReplyParser

    try:  # the layout since issue 13
        from smtp_tutor.client.session import ReplyEvent, Target
    except ImportError:  # before it (the 2026-12-03 baseline)
        from smtp_tutor.session import ReplyEvent, Target  # type: ignore[no-redef]

    dialogue = Dialogue()
    parser = ReplyParser()

    def receive(data: bytes) -> list:
        return [dialogue.receive(reply) for reply in parser.feed(data)]

    def exchange(line: str, reply: bytes) -> None:
        dialogue.send(line)
        receive(reply)

    receive(b"220 fake.example ESMTP bench server\r\n")
    exchange("EHLO bench.example", ehlo_reply(ehlo_lines))
    if dialogue.capabilities is None:
        raise RuntimeError("the EHLO reply did not give the dialogue capabilities")

    sink = io.StringIO()  # what the console prints: only the 10,000-line reply below
    with create_pipe_input() as pipe:
        console = Console(
            Target("127.0.0.1", 25), ConsoleOptions(), input=pipe, output=PlainTextOutput(sink)
        )
        console._dialogue = lambda: dialogue  # type: ignore[method-assign]
        completer, wiring = consoles_completer(console, lambda: dialogue)
        for number in range(addresses // 2):
            for line in (
                f"MAIL FROM:<sender{number}@example.org>",
                f"RCPT TO:<rcpt{number}@example.net>",
            ):
                console.addresses.learn(line)
                exchange(line, b"250 2.0.0 OK\r\n")
            exchange("RSET", b"250 2.0.0 OK\r\n")

        event = CompleteEvent(completion_requested=True)

        def keystroke(text: str) -> float:
            start = time.perf_counter()
            list(completer.get_completions(Document(text, len(text)), event))
            return (time.perf_counter() - start) * 1000

        def toolbar() -> float:
            start = time.perf_counter()
            console._toolbar()
            return (time.perf_counter() - start) * 1000

        completion: list[float] = []
        toolbars: list[float] = []
        slowest = (0.0, "")
        for _ in range(passes):
            for lines in (READY_LINES, DATA_LINES):
                for line in lines:
                    for end in range(1, len(line) + 1):
                        completion.append(keystroke(line[:end]))
                        toolbars.append(toolbar())
                        slowest = max(slowest, (completion[-1], line[:end]))
                if lines is READY_LINES:  # into DATA for the header lines
                    exchange("MAIL FROM:<sender1@example.org>", b"250 OK\r\n")
                    exchange("RCPT TO:<rcpt1@example.net>", b"250 OK\r\n")
                    exchange("DATA", b"354 go ahead\r\n")
                    assert dialogue.sending_data, dialogue.phase
            exchange(".", b"250 2.0.0 queued\r\n")
        offered = len(list(completer.get_completions(Document("RCPT TO:<r"), event)))

        # A 10,000-line reply, as the console shows one, into the PlainTextOutput.
        sink.seek(0)
        sink.truncate()
        data = help_reply(help_lines)
        start = time.perf_counter()
        dialogue.send("HELP")
        for outcome in receive(data):
            console._on_event(ReplyEvent(outcome, 0.001))
        printed = time.perf_counter() - start
    return {
        "completion_ms": completion,
        "toolbar_ms": toolbars,
        "completer": wiring,
        "slowest_ms": slowest[0],
        "slowest_text": slowest[1],
        "print_s": printed,
        "printed_lines": sink.getvalue().count("\n"),
        "offered_for_rcpt": offered,
        "addresses_kept": len(console.addresses),
        "ehlo_keywords_kept": len(dialogue.capabilities.keywords) if dialogue.capabilities else 0,
    }


def run_worker(passes: int, env: dict[str, str]) -> dict:
    command = [sys.executable, __file__, "--worker", "--passes", str(passes)]
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    return json.loads(done.stdout)


# -- the run -----------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--passes", type=int, default=10, help="typing passes per round (10)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="save the figures in FILE")
    parser.add_argument("--compare", type=Path, metavar="OLD.json", help="print before / after")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(typing_worker(EHLO_LINES, HELP_LINES, ADDRESSES, args.passes)))
        return 0

    ptpython = peer_command("ptpython")
    if ptpython is None:
        print("ptpython is not installed here: pip install -e '.[bench]' (the ratio is left out)")
    samples: dict[str, list[float]] = {}
    extra: dict[str, list] = {"completion_ms": [], "toolbar_ms": []}
    facts: dict[str, object] = {}

    def add(key: str, value: float) -> None:
        samples.setdefault(key, []).append(value)

    load_before = load_average()
    with tempfile.TemporaryDirectory() as home:
        env = bench_env(home)
        sink = start_bench_server("sink", env)
        fake = start_bench_server(
            "fake", env, "--ehlo-lines", str(EHLO_LINES), "--help-lines", str(HELP_LINES)
        )
        with servers(sink, fake):

            def prompt() -> None:
                greeting, first = time_to_greeting(env)
                add("greeting", greeting)
                add("prompt", first)

            def typing() -> None:
                result = run_worker(args.passes, env)
                extra["completion_ms"] += result.pop("completion_ms")
                extra["toolbar_ms"] += result.pop("toolbar_ms")
                add("slowest_ms", result.pop("slowest_ms"))
                facts.setdefault("slowest_keystrokes", []).append(result.pop("slowest_text"))
                add("print_inprocess", result.pop("print_s"))
                facts.update(result)

            def pty_print() -> None:
                ehlo, help_time, lines = print_in_pty(fake, env)
                add("ehlo_pty", ehlo)
                add("print_pty", help_time)
                facts["pty_help_lines_shown"] = lines

            tutor = smtp_tutor_command()
            measures: list[Callable[[], None]] = [
                prompt,
                lambda: add("connect", time_connect(sink, env)),
                lambda: add("explain", time_command([*tutor, "explain", "550"], env)),
                lambda: add("version", time_command([*tutor, "--version"], env)),
                lambda: add("floor", time_command([sys.executable, "-c", "pass"], env)),
                lambda: add("rss", rss_after_starttls(env)),
                pty_print,
                typing,
            ]
            if ptpython is not None:
                measures.insert(1, lambda: add("ptpython", time_ptpython(ptpython, env)))
            # Warm-up: the sandbox certificate is made once, byte code and disk caches fill.
            time_to_greeting(env)
            if ptpython is not None:
                time_ptpython(ptpython, env)
            time_connect(sink, env)
            for number in range(args.rounds):
                for measure in measures if number % 2 == 0 else measures[::-1]:
                    measure()
                print(f"  round {number + 1}/{args.rounds} done", file=sys.stderr)
    load_after = load_average()

    figures = [
        median_figure("greeting", "smtp-tutor → sandbox's 220 on screen", "s", samples["greeting"]),
        median_figure(
            "prompt",
            "smtp-tutor → first prompt (sandbox, connected, 220 shown)",
            "s",
            samples["prompt"],
            TARGET_PROMPT,
        ),
    ]
    if "ptpython" in samples:
        paired = [a / b for a, b in zip(samples["prompt"], samples["ptpython"], strict=True)]
        figures += [
            median_figure("ptpython", "ptpython → >>>", "s", samples["ptpython"]),
            Figure(
                "prompt_ratio",
                "  first prompt / ptpython's (ratio of medians)",
                "x",
                statistics.median(samples["prompt"]) / statistics.median(samples["ptpython"]),
                paired,
                TARGET_PROMPT_RATIO,
                f"per round: median {statistics.median(paired):.2f}×",
            ),
        ]
    p99 = percentile(extra["completion_ms"], 0.99)
    figures += [
        median_figure(
            "connect",
            "smtp-tutor connect 127.0.0.1 PORT (aiosmtpd Sink) → first prompt",
            "s",
            samples["connect"],
            TARGET_CONNECT,
        ),
        median_figure(
            "explain", "smtp-tutor explain 550 (to exit)", "s", samples["explain"], TARGET_EXPLAIN
        ),
        median_figure(
            "version", "smtp-tutor --version (to exit)", "s", samples["version"], TARGET_VERSION
        ),
        median_figure("floor", "python -c pass (the floor)", "s", samples["floor"]),
        median_figure(
            "rss",
            "console RSS after EHLO, STARTTLS, EHLO (VmRSS, MiB)",
            "MB",
            samples["rss"],
            TARGET_RSS,
        ),
        Figure(
            "completion_p99",
            f"completion per keystroke, p99 ({EHLO_LINES:,}-line EHLO, {ADDRESSES:,} addr.)",
            "ms",
            p99,
            [],
            TARGET_COMPLETION_P99_MS,
            f"in-process; {len(extra['completion_ms'])} keystrokes: median "
            f"{statistics.median(extra['completion_ms']):.2f} ms, max "
            f"{max(extra['completion_ms']):.2f} ms",
        ),
        Figure(
            "toolbar_p99",
            "  toolbar per redraw, p99 (same session)",
            "ms",
            percentile(extra["toolbar_ms"], 0.99),
            [],
        ),
        median_figure(
            "slowest_ms",
            "  the slowest keystroke of a session",
            "ms",
            samples["slowest_ms"],
            note="at: " + ", ".join(repr(t) for t in sorted(set(facts["slowest_keystrokes"]))),
        ),
        median_figure(
            "print_pty",
            f"printing a {HELP_LINES:,}-line reply: HELP → next prompt (pty)",
            "s",
            samples["print_pty"],
            TARGET_PRINT,
            f"{facts.get('pty_help_lines_shown')} of its lines shown on screen",
        ),
        median_figure(
            "print_inprocess",
            "  the same reply into a PlainTextOutput (in-process)",
            "s",
            samples["print_inprocess"],
            note=f"{facts.get('printed_lines')} lines printed",
        ),
        median_figure(
            "ehlo_pty",
            f"  a {EHLO_LINES:,}-line EHLO reply → next prompt (pty)",
            "s",
            samples["ehlo_pty"],
        ),
    ]
    head = header(
        f"median of {args.rounds} rounds, alternating order", args.rounds, load_before, load_after
    )
    head["facts"] = facts
    print_table("smtp-tutor start-up, memory and typing (bench/startup.py)", head, figures)
    print(
        f"  session kept {facts.get('addresses_kept')} of {ADDRESSES} addresses and "
        f"{facts.get('ehlo_keywords_kept')} EHLO keywords; RCPT TO:<r offers "
        f"{facts.get('offered_for_rcpt')} completions; completer: {facts.get('completer')}"
    )
    if args.compare:
        print_compare(args.compare, "startup", figures)
    if args.json:
        save_json(args.json, "startup", head, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
