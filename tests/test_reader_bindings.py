"""The console's prompts load vi's key bindings only in vi mode (console/reader.py).

prompt_toolkit's Application always loads them; the reader swaps its loader for one
without vi while it makes a prompt in emacs mode. These tests hold that loader to
prompt_toolkit's own less the vi bindings, and both editing modes to working for real:
keys typed through a pipe into a console on the sandbox, the line the server answers.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import prompt_toolkit.application.application as pt_application
import pytest
from prompt_toolkit.key_binding.bindings.vi import load_vi_bindings, load_vi_search_bindings
from prompt_toolkit.key_binding.defaults import load_key_bindings

from smtp_tutor.client.session import Target
from smtp_tutor.console.app import ConsoleOptions
from smtp_tutor.console.reader import default_key_bindings, emacs_key_bindings
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


def test_the_loader_is_swapped_only_while_a_prompt_is_made() -> None:
    original = pt_application.load_key_bindings
    with default_key_bindings(vi=False):
        assert pt_application.load_key_bindings is emacs_key_bindings
    assert pt_application.load_key_bindings is original
    with pytest.raises(RuntimeError), default_key_bindings(vi=False):
        raise RuntimeError("a prompt that cannot be made")
    assert pt_application.load_key_bindings is original
    with default_key_bindings(vi=True):
        assert pt_application.load_key_bindings is original


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
