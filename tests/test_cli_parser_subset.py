"""The command line parsed with only the named subcommand built reads it as the whole parser."""

from __future__ import annotations

import argparse

import pytest

from smtp_tutor.cli.main import build_parser, parse_command_line

pytestmark = pytest.mark.pure

ACCEPTED = [
    [],
    ["--no-color"],
    ["--lang", "zh"],
    ["--transcript", "replay"],  # a value that names a subcommand: the console still
    ["--transcript", "out.txt", "--format", "jsonl"],
    ["connect", "mail.example", "2525"],
    ["--lang", "zh", "explain", "550"],
    ["explain", "550 5.1.1 User unknown"],
    ["replay", "one.smtp", "--server", "127.0.0.1:2525", "-q", "--pipeline"],
    ["serve", "--port", "0", "--require-tls"],
    ["lesson", "3"],
    ["lessons"],
    ["diagram", "t.smtp", "-o", "t.svg"],
]


@pytest.mark.parametrize("argv", ACCEPTED, ids=lambda argv: " ".join(argv) or "(none)")
def test_the_subset_parser_reads_argv_as_the_whole_one(argv: list[str]) -> None:
    whole = build_parser("en").parse_args(argv)
    assert parse_command_line(argv, "en") == whole


@pytest.mark.parametrize(
    "argv",
    [["frobnicate"], ["replay"], ["explain", "550", "--bogus"], ["--lang", "xx", "explain"]],
    ids=" ".join,
)
def test_a_usage_error_is_worded_by_the_whole_parser(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as whole_exit:
        build_parser("en").parse_args(argv)
    whole = capsys.readouterr().err
    with pytest.raises(SystemExit) as subset_exit:
        parse_command_line(argv, "en")
    assert capsys.readouterr().err == whole
    assert subset_exit.value.code == whole_exit.value.code == 2


def test_unknown_command_still_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_command_line(["frobnicate"], "en")
    error = capsys.readouterr().err
    for name in ("connect", "serve", "explain", "lesson", "lessons", "diagram", "replay"):
        assert repr(name) in error


@pytest.mark.parametrize("argv", [["--help"], ["--he", "replay"], ["replay", "-qh"]], ids=" ".join)
def test_help_is_the_whole_parsers(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser("en").parse_args(argv)
    whole = capsys.readouterr().out
    with pytest.raises(SystemExit):
        parse_command_line(argv, "en")
    assert capsys.readouterr().out == whole
    assert isinstance(build_parser("en", only="replay"), argparse.ArgumentParser)
