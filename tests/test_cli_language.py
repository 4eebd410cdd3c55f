"""`--help` and usage errors in the reader's language: `--lang zh`, or a Chinese locale.

The real program in subprocesses, with a private home: the help of the top-level command
and of every subcommand comes out in Chinese, wrapped to the terminal's width counting a
Chinese character as two columns; a usage error is one Chinese line on stderr and exit 2;
English stays as it was. And the catalogue covers every text the parsers have.
"""

from __future__ import annotations

import argparse
import gettext
import os
import re
import subprocess
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest

from smtp_tutor.cli import build_parser, main
from smtp_tutor.cli import text as cli_text
from smtp_tutor.core.catalogue import load_catalogue
from tests.test_cli import run

CJK = re.compile(r"[\u4e00-\u9fff]")
SUBCOMMANDS = ["connect", "serve", "explain", "lesson", "lessons", "diagram", "replay"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A private home, no locale at all (each test says which), 80 columns, no colour."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("XDG_", "LC_", "LANG", "PYTHON"))
    }
    for name in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        environment[name] = str(tmp_path / name.lower())
    environment.update(NO_COLOR="1", COLUMNS="80")
    return environment


def columns(line: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line)


def one_usage_error(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# -- help ---------------------------------------------------------------------------------


def test_top_level_help_with_lang_zh(env: dict[str, str]) -> None:
    result = run(env, "--lang", "zh", "--help")
    assert (result.returncode, result.stderr) == (0, "")
    out = result.stdout
    assert out.startswith("用法：smtp-tutor [-h]")
    assert "显示这段帮助并退出" in out and "显示程序的版本号并退出" in out
    for sub, zh in [("connect", "在真实服务器上打开控制台"), ("serve", "在前台运行沙盒")]:
        assert re.search(rf"^\s+{sub}\s+{zh}", out, re.MULTILINE), sub
    assert "open a console on a real server" not in out
    assert "show this help message" not in out
    assert max(columns(line) for line in out.splitlines()) <= 80


def test_connect_help_follows_a_chinese_locale(env: dict[str, str]) -> None:
    env["LANG"] = "zh_CN.UTF-8"
    result = run(env, "connect", "--help")
    assert (result.returncode, result.stderr) == (0, "")
    out = result.stdout
    assert out.startswith("用法：smtp-tutor connect ")
    for zh in ["在 HOST 上打开控制台", "找到服务器", "脚本化探测（不开控制台）", "只用 IPv4"]:
        assert zh in out, zh
    # The usage's continuation lines line up under the first, though "用法：" is 6 columns.
    usage = out.split("\n\n", 1)[0].splitlines()
    assert all(line.startswith(" " * columns("用法：smtp-tutor connect ")) for line in usage[1:])
    assert max(columns(line) for line in out.splitlines()) <= 80


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_every_subcommands_help_is_chinese(env: dict[str, str], sub: str) -> None:
    result = run(env, sub, "--help", "--lang", "zh")  # --lang after the subcommand too
    assert (result.returncode, result.stderr) == (0, "")
    described = result.stdout.split("\n\n")[1]  # the description, after the usage
    assert CJK.search(described), result.stdout


def test_english_help_is_unchanged(env: dict[str, str]) -> None:
    env["LC_ALL"] = "C.UTF-8"
    result = run(env, "serve", "--help")
    assert result.stdout.startswith("usage: smtp-tutor serve [-h]")
    assert "  -h, --help            show this help message and exit\n" in result.stdout
    assert not CJK.search(result.stdout)


# -- usage errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--lang", "zh", "serve", "--port", "x"],
            "smtp-tutor serve：错误：参数 --port：不是端口号：'x'（用 --help 查看用法）",
        ),
        (
            ["--lang", "zh", "frobnicate"],
            "smtp-tutor：错误：参数 COMMAND：无效的选择：'frobnicate'（可选：'connect', "
            "'serve', 'explain', 'lesson', 'lessons', 'diagram', 'replay'）（用 --help 查看用法）",
        ),
        (["--lang=zh", "explain"], "smtp-tutor explain：错误：缺少必需的参数：query"),
        (["--lang", "zh", "--bogus"], "smtp-tutor：错误：无法识别的参数：--bogus"),
        (
            ["--lang", "zh", "connect", "127.0.0.1", "--timeout", "nan"],
            "smtp-tutor connect：错误：参数 --timeout：必须是大于 0 的秒数，不能是 'nan'",
        ),
        (["--lang", "zh", "connect"], "smtp-tutor connect：错误：请给出 HOST（或者 --mx DOMAIN）"),
        (["--lang", "zh", "serve", "--user", "bad"], "smtp-tutor serve: 账号 'bad' 不是"),
        (["--lang", "zh", "lessons", "--reset", "99"], "smtp-tutor lessons: 没有课程 '99'"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else "",
)
def test_a_usage_error_is_one_chinese_line_and_exit_2(
    env: dict[str, str], args: list[str], expected: str
) -> None:
    assert one_usage_error(run(env, *args)).startswith(expected)


def test_a_usage_error_follows_the_locale(env: dict[str, str]) -> None:
    env["LANGUAGE"], env["LANG"] = "zh_CN:en", "zh_CN.UTF-8"
    line = one_usage_error(run(env, "serve", "--max-size", "0"))
    assert line == "smtp-tutor serve：错误：参数 --max-size：至少要是 1（用 --help 查看用法）"


def test_an_unknown_lang_is_said_in_the_locales_language(env: dict[str, str]) -> None:
    env["LANG"] = "zh_CN.UTF-8"
    line = one_usage_error(run(env, "--lang", "xx", "explain", "250"))
    assert line == (
        "smtp-tutor：错误：参数 --lang：没有 'xx' 这种语言的文本；可选：en, zh"
        "（用 --help 查看用法）"
    )


def test_english_usage_errors_are_unchanged(env: dict[str, str]) -> None:
    env["LC_ALL"] = "C.UTF-8"
    assert one_usage_error(run(env, "serve", "--port", "x")) == (
        "smtp-tutor serve: error: argument --port: not a port number: 'x' (try --help)"
    )
    assert one_usage_error(run(env, "connect")) == (
        "smtp-tutor connect: error: give HOST (or --mx DOMAIN) (try --help)"
    )


# -- the language before parsing, in-process ----------------------------------------------


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [
        (["--lang", "zh", "--help"], {}, "zh"),
        (["connect", "--lang=zh_CN.UTF-8", "--help"], {}, "zh"),
        (["--help"], {"LANG": "zh_CN.UTF-8"}, "zh"),
        (["--help"], {"LANGUAGE": "zh", "LANG": "en_US.UTF-8"}, "zh"),
        (["--help"], {"LC_ALL": "C", "LANGUAGE": "zh"}, "en"),  # C means English, as gettext
        (["--lang", "xx"], {"LANG": "zh_CN.UTF-8"}, "zh"),  # unknown: argparse will say so
        (["--lang", "en"], {"LANG": "zh_CN.UTF-8"}, "en"),
        (["explain", "--", "--lang", "zh"], {}, "en"),  # after "--" it is not an option
        (["--lang"], {}, "en"),
    ],
)
def test_the_language_is_known_before_parsing(
    argv: list[str], environ: dict[str, str], expected: str
) -> None:
    assert cli_text.argv_language(argv, environ) == expected


def test_argparse_gets_its_own_words_back(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    with pytest.raises(SystemExit) as stopped:
        main(["--lang", "zh", "serve", "--port", "x"])
    assert stopped.value.code == 2
    assert "不是端口号" in capsys.readouterr().err
    assert argparse._ is gettext.gettext  # type: ignore[attr-defined]
    assert argparse.ngettext is gettext.ngettext  # type: ignore[attr-defined]


def test_wrapping_breaks_between_chinese_characters_not_inside_words() -> None:
    text = "把会话边进行边写入 FILE（密码写成占位符），像 telnet 一样。"
    for width in range(12, 40):
        lines = cli_text.wrap_wide(text, width)
        assert all(columns(line) <= width for line in lines), (width, lines)
        assert "".join(lines).replace(" ", "") == text.replace(" ", "")
        assert not any(line.startswith(("，", "。", "）")) for line in lines)
        assert not any(line.endswith("（") for line in lines)
        assert "telnet" in " ".join(lines).split()  # an English word is never split


# -- the catalogue ------------------------------------------------------------------------


def parser_texts(parser: argparse.ArgumentParser) -> Iterator[str]:
    """Every description, group title and help text of `parser` and its subcommands."""
    if parser.description:
        yield parser.description
    for group in parser._action_groups:
        if group.title:
            yield group.title
    for action in parser._actions:
        if action.help and action.help is not argparse.SUPPRESS:
            yield action.help
        if isinstance(action, argparse._SubParsersAction):
            yield from (choice.help for choice in action._choices_actions if choice.help)
            for subparser in action.choices.values():
                yield from parser_texts(subparser)


def test_every_text_of_the_parsers_has_a_chinese_translation() -> None:
    texts = set(parser_texts(build_parser("en")))
    assert len(texts) > 70
    missing = sorted(text for text in texts if not cli_text.has_translation(text, "zh"))
    assert missing == [], "add [[text]] pairs to smtp_tutor/data/cli.toml for these"


ARGPARSE_PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sr]|%[sr]")


def test_the_pairs_keep_argparses_placeholders() -> None:
    pairs = load_catalogue("cli")["text"]
    english = [pair["en"] for pair in pairs]
    assert len(english) == len(set(english)), "an English text is there twice"
    for pair in pairs:
        assert set(pair) == {"en", "zh"}, pair
        assert CJK.search(pair["zh"]) or pair["en"] in ("%(heading)s:",), pair
        en, zh = pair["en"], pair["zh"]
        assert sorted(ARGPARSE_PLACEHOLDER.findall(en)) == sorted(
            ARGPARSE_PLACEHOLDER.findall(zh)
        ), pair
        assert zh.count("%") == len(ARGPARSE_PLACEHOLDER.findall(zh)), pair
