"""The console's prompts load vi's key bindings only in vi mode, and only once on screen.

prompt_toolkit's Application always loads them; the reader swaps its loader, while it
makes a prompt, for one that defers them (made after the first prompt is drawn, or when
a key typed before it is handled) and leaves vi's out in emacs mode. These tests hold
that loader to prompt_toolkit's own less the vi bindings, the deferral to real prompts
fed through a pipe, and both editing modes to working for real: keys typed into a
console on the sandbox, the line the server answers.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import prompt_toolkit.application.application as pt_application
import pytest
from prompt_toolkit.completion import DummyCompleter
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.key_binding.bindings.vi import load_vi_bindings, load_vi_search_bindings
from prompt_toolkit.key_binding.defaults import load_key_bindings
from prompt_toolkit.output import DummyOutput

from smtp_tutor.client.session import Target
from smtp_tutor.console.app import ConsoleOptions
from smtp_tutor.console.reader import (
    DeferredKeyBindings,
    Reader,
    default_key_bindings,
    emacs_key_bindings,
)
from smtp_tutor.console.view import View
from smtp_tutor.sandbox import Sandbox, SandboxConfig
from tests.consoles import run_console, screen_text


def _described(bindings: object) -> list[tuple[tuple[object, ...], str]]:
    found = [
        (binding.keys, binding.handler.__qualname__)
        for binding in bindings.bindings  # type: ignore[attr-defined]
    ]
    return sorted(found, key=repr)


def test_the_emacs_defaults_are_prompt_toolkits_less_vi() -> None:
    theirs = _described(load_key_bindings())
    for binding in _described(load_vi_bindings()) + _described(load_vi_search_bindings()):
        theirs.remove(binding)
    ours = _described(emacs_key_bindings())
    assert ours == theirs
    assert len(ours) > 100  # basic, emacs, search, selection, mouse and CPR bindings


@pytest.mark.parametrize("vi", [False, True])
def test_the_loader_is_swapped_only_while_a_prompt_is_made(vi: bool) -> None:
    original = pt_application.load_key_bindings
    with default_key_bindings(vi=vi) as made:
        bindings = pt_application.load_key_bindings()
    assert pt_application.load_key_bindings is original
    assert made == [bindings]
    assert isinstance(bindings, DeferredKeyBindings) and not bindings.built
    expected = load_key_bindings() if vi else emacs_key_bindings()
    assert _described(bindings) == _described(expected)
    assert bindings.built
    with pytest.raises(RuntimeError), default_key_bindings(vi=vi):
        raise RuntimeError("a prompt that cannot be made")
    assert pt_application.load_key_bindings is original


def _reader(pipe: object, mode: str = "emacs") -> Reader:
    view = View(DummyOutput(), "default", color=False, lang=lambda: "en")
    reader = Reader(pipe, DummyOutput(), None, view)  # type: ignore[arg-type]
    reader.open(completer=DummyCompleter(), toolbar=None, editing_mode=mode, history=None)
    return reader


def test_the_bindings_are_made_once_the_first_prompt_is_drawn() -> None:
    async def main() -> tuple[bool, bool, str]:
        with create_pipe_input() as pipe:
            reader = _reader(pipe)
            before = any(bindings.built for bindings in reader.deferred)
            line = asyncio.create_task(reader.read("smtp> ", secret=False, kind="command"))
            for _ in range(50):  # drawn, then made in the loop's next turns: no key typed
                await asyncio.sleep(0.01)
                if all(bindings.built for bindings in reader.deferred):
                    break
            after = bool(reader.deferred) and all(b.built for b in reader.deferred)
            pipe.send_text("NOOP\r")
            return before, after, await asyncio.wait_for(line, 5)

    assert asyncio.run(main()) == (False, True, "NOOP")


@pytest.mark.parametrize("mode", ["emacs", "vi"])
def test_keys_typed_before_the_prompt_is_drawn_are_edited_as_typed(mode: str) -> None:
    """Backspace and Ctrl-A, typed before the first prompt: the bindings are made for them."""

    async def main() -> str:
        with create_pipe_input() as pipe:
            reader = _reader(pipe, mode)
            pipe.send_text("ELO a\x7fb\x01H\r" if mode == "emacs" else "HELO a\x7fb\r")
            assert not any(bindings.built for bindings in reader.deferred)
            return await asyncio.wait_for(reader.read("smtp> ", secret=False, kind="command"), 5)

    assert asyncio.run(main()) == "HELO b"


@pytest.mark.parametrize(("mode", "sent"), [("vi", "b"), ("emacs", "axab")])
def test_each_editing_mode_edits_as_its_keys_say(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, sent: str
) -> None:
    """`HELO a`, Escape, `x`, `a`, `b`: vi deletes the `a` and appends `b`; in emacs mode
    Escape-x is no command, so the keys are text. The sandbox greets what it was sent."""
    for name in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))

    async def main() -> str:
        sandbox = Sandbox(SandboxConfig(port=0, mailbox=tmp_path / "Maildir"))
        await sandbox.start()
        try:
            options = ConsoleOptions(color=False, toolbar=False, editing_mode=mode)
            target = Target(sandbox.host, sandbox.port)
            code, out, _ = await run_console(target, ["HELO a\x1bxab", "QUIT"], options)
            assert code == 0
            return screen_text(out)
        finally:
            await sandbox.stop()

    screen = asyncio.run(main())
    assert f"250 localhost Hello {sent} " in screen
