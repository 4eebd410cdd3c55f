"""Start-up time of smtp-tutor: from launching the command to the moment a person can act.

Measures, in one run, side by side:
  * `smtp-tutor` (sandbox + console) to the sandbox's 220 greeting on screen,
  * the same to the first prompt,
  * `smtp-tutor --version` to exit, and bare `python -c pass` as the floor.
Each figure is the median of N runs (default 5), in a pseudo-terminal, as a user sees it.

    python bench/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pexpect


def smtp_tutor_command() -> list[str]:
    script = shutil.which("smtp-tutor", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "smtp_tutor"]


def time_to_greeting(env: dict[str, str]) -> tuple[float, float]:
    command = smtp_tutor_command()
    start = time.perf_counter()
    child = pexpect.spawn(
        command[0], command[1:], env=env, encoding="utf-8", timeout=30, dimensions=(40, 120)
    )
    try:
        child.expect("220 ")
        greeting = time.perf_counter() - start
        child.expect("smtp>")
        prompt = time.perf_counter() - start
        child.sendline(":quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    return greeting, prompt


def time_command(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = dict(
            os.environ,
            PROMPT_TOOLKIT_NO_CPR="1",
            TERM="xterm",
            NO_COLOR="1",
            XDG_DATA_HOME=f"{home}/data",
            XDG_STATE_HOME=f"{home}/state",
            XDG_CONFIG_HOME=f"{home}/config",
        )
        time_to_greeting(env)  # warm-up: makes the sandbox certificate once, fills caches
        greetings, prompts, versions, floors = [], [], [], []
        for _ in range(args.runs):
            greeting, prompt = time_to_greeting(env)
            greetings.append(greeting)
            prompts.append(prompt)
            versions.append(time_command([*smtp_tutor_command(), "--version"], env))
            floors.append(time_command([sys.executable, "-c", "pass"], env))
    rows = [
        ("smtp-tutor → 220 greeting shown", greetings),
        ("smtp-tutor → first prompt", prompts),
        ("smtp-tutor --version", versions),
        ("python -c pass (floor)", floors),
    ]
    print(f"median of {args.runs} runs, seconds")
    for label, values in rows:
        print(
            f"  {label:34} {statistics.median(values):6.3f}  (min {min(values):.3f}, "
            f"max {max(values):.3f})"
        )
    ratio = statistics.median(greetings) / statistics.median(floors)
    print(f"  greeting / bare interpreter start: {ratio:.1f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
