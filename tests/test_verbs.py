"""The verb table (data/verbs.toml): one row a verb, read by the dialogue, the checker,
completion, the hints, the history and the knowledge base.

Three kinds of test: the file is complete (every language, every phase name valid, every
finding and keyword it names exists); it says what the tables it replaced said (their
values are written out below, as they stood in the code); and a verb added to a copy of
the file is known everywhere without a line of Python changing.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
import textwrap
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from smtp_tutor.console import history
from smtp_tutor.console.completion import SMTPCompleter
from smtp_tutor.core import command_line, dialogue, knowledge
from smtp_tutor.core.catalogue import load_catalogue
from smtp_tutor.core.phases import Phase
from smtp_tutor.core.replies import make_reply
from smtp_tutor.core.verbs import VerbTableError, parse_verbs, verb, verbs

pure = pytest.mark.pure  # no socket, no process: `pytest -m pure`

ROOT = Path(__file__).resolve().parents[1]


def raw_table() -> dict[str, Any]:
    text = resources.files("smtp_tutor.data").joinpath("verbs.toml").read_text("utf-8")
    return tomllib.loads(text)


# -- the file is complete ------------------------------------------------------------------


@pure
def test_the_file_is_written_in_the_knowledge_bases_languages() -> None:
    assert tuple(raw_table()["languages"]) == knowledge.LANGUAGES


@pure
def test_every_text_of_every_verb_is_there_in_every_language() -> None:
    for name, row in verbs().items():
        texts = [row.hint, row.description]
        if row.path_hint is not None:
            texts.append(row.path_hint)
        for parameter in row.parameters.values():
            texts += [parameter.hint, *(offer.hint for offer in parameter.offers)]
        for text in texts:
            for lang in knowledge.LANGUAGES:
                assert text.translations.get(lang, "").strip(), (name, lang, text)
        assert row.hint.in_language("zh") != row.hint.in_language("en"), name


@pure
def test_every_phase_is_a_dialogue_phase_a_client_can_send_in() -> None:
    sendable = {Phase.GREETED, Phase.READY, Phase.MAIL, Phase.RCPT}
    for name, row in verbs().items():
        assert all(isinstance(phase, Phase) for phase in row.phases), name
        assert row.phases <= sendable, name
        assert row.success is None or row.success in Phase, name


@pure
def test_the_findings_it_names_exist_and_the_keywords_are_explained() -> None:
    findings = load_catalogue("checker")
    keywords = knowledge.load_knowledge()
    for name, row in verbs().items():
        if row.argument == "required":
            assert row.missing_argument in findings, name
        for parameter in row.parameters.values():
            if parameter.values:
                assert parameter.bad_value in findings, (name, parameter.name)
            assert keywords.keyword(parameter.extension) is not None, parameter.extension
        if row.extension:
            assert keywords.keyword(row.extension) is not None, (name, row.extension)


@pure
def test_a_verb_is_looked_up_in_any_case_and_an_unknown_one_is_none() -> None:
    assert verb("rcpt") is verbs()["RCPT"]
    assert verb("FROB") is None


# -- the old tables, reproduced -------------------------------------------------------------
# Their values as they stood in core/command_line.py, core/dialogue.py, core/checker.py,
# console/history.py, core/knowledge.py and console/completion.py before the table existed.

_ANY = frozenset({Phase.GREETED, Phase.READY, Phase.MAIL, Phase.RCPT})
OLD_KNOWN_VERBS = (
    "EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "BDAT",
    "RSET", "NOOP", "HELP", "VRFY", "EXPN", "QUIT", "ETRN", "TURN", "ATRN",
)  # fmt: skip
OLD_ALLOWED_PHASES = {
    "EHLO": _ANY,
    "HELO": _ANY,
    "STARTTLS": frozenset({Phase.READY}),
    "AUTH": frozenset({Phase.READY}),
    "MAIL": frozenset({Phase.READY}),
    "RCPT": frozenset({Phase.MAIL, Phase.RCPT}),
    "DATA": frozenset({Phase.RCPT}),
    "BDAT": frozenset({Phase.RCPT}),
    "RSET": _ANY,
    "NOOP": _ANY,
    "HELP": _ANY,
    "VRFY": _ANY,
    "EXPN": _ANY,
    "QUIT": _ANY,
    "ETRN": frozenset({Phase.READY}),
}
OLD_SUCCESS_TRANSITIONS = {
    dialogue.GREETING: Phase.GREETED,
    "EHLO": Phase.READY,
    "HELO": Phase.READY,
    "MAIL": Phase.MAIL,
    "RCPT": Phase.RCPT,
    "DATA": Phase.DATA,
    dialogue.END_OF_DATA: Phase.READY,
}
OLD_EXPECTED_CODES = {
    dialogue.GREETING: (220,),
    "EHLO": (250,),
    "HELO": (250,),
    "STARTTLS": (220,),
    "AUTH": (235, 334),
    dialogue.AUTH_RESPONSE: (235, 334),
    "MAIL": (250,),
    "RCPT": (250, 251),
    "DATA": (354,),
    "BDAT": (250,),
    dialogue.END_OF_DATA: (250,),
    "RSET": (250,),
    "NOOP": (250,),
    "HELP": (211, 214),
    "VRFY": (250, 251, 252),
    "EXPN": (250, 252),
    "QUIT": (221,),
    "ETRN": (250, 251, 252, 253),
}
OLD_GROUP_ENDERS = {
    "EHLO", "HELO", "DATA", "STARTTLS", "AUTH", "QUIT", "NOOP", "VRFY", "EXPN", "TURN", "ETRN",
    "BDAT",
}  # fmt: skip
OLD_PARAMETER_KEYWORDS = {
    "MAIL": {
        "SIZE": "SIZE",
        "BODY": "8BITMIME",
        "SMTPUTF8": "SMTPUTF8",
        "RET": "DSN",
        "ENVID": "DSN",
        "AUTH": "AUTH",
        "REQUIRETLS": "REQUIRETLS",
        "MT-PRIORITY": "MT-PRIORITY",
        "BY": "DELIVERBY",
        "HOLDFOR": "FUTURERELEASE",
        "HOLDUNTIL": "FUTURERELEASE",
    },
    "RCPT": {"NOTIFY": "DSN", "ORCPT": "DSN"},
}
OLD_VERB_HINTS = {
    "EHLO": "greet the server and ask for its extensions",
    "HELO": "old greeting: no extensions",
    "STARTTLS": "switch this connection to TLS",
    "AUTH": "log in (SASL)",
    "MAIL": "start a message: the envelope sender",
    "RCPT": "add an envelope recipient",
    "DATA": "send the message text, end with a lone .",
    "BDAT": "send the message in sized chunks (CHUNKING)",
    "RSET": "abort the current transaction",
    "NOOP": "do nothing; is the server still there?",
    "HELP": "ask the server for help text",
    "VRFY": "ask whether a mailbox exists",
    "EXPN": "ask for the members of a mailing list",
    "QUIT": "end the session politely",
    "ETRN": "ask the server to flush its queue for a domain",
    "TURN": "obsolete role reversal; servers refuse it",
    "ATRN": "authenticated TURN (on-demand relay)",
}
OLD_PARAMETER_INSERTS = {
    "SIZE": ("SIZE=", "declare the message size in octets"),
    "BODY": ("BODY=8BITMIME", "the body contains 8-bit characters"),
    "SMTPUTF8": ("SMTPUTF8", "UTF-8 in addresses and headers"),
    "RET": ("RET=", "bounce with FULL message or HDRS only (DSN)"),
    "ENVID": ("ENVID=", "your id for this message, returned in DSNs"),
    "AUTH": ("AUTH=<>", "who submitted the message; <> = not vouched for"),
    "REQUIRETLS": ("REQUIRETLS", "relay this message only over TLS"),
    "MT-PRIORITY": ("MT-PRIORITY=", "priority from -9 to 9"),
    "BY": ("BY=", "deliver within this many seconds"),
    "HOLDFOR": ("HOLDFOR=", "hold the message for this many seconds"),
    "HOLDUNTIL": ("HOLDUNTIL=", "hold the message until this time"),
    "NOTIFY": ("NOTIFY=", "when to send a DSN for this recipient"),
    "ORCPT": ("ORCPT=rfc822;", "the original recipient, for DSNs"),
}
OLD_PARAMETER_VALUES = {
    "RET": (("FULL", "return the whole message"), ("HDRS", "return the headers only")),
    "NOTIFY": (
        ("SUCCESS,FAILURE", "report delivery and failure"),
        ("FAILURE", "report failure only (the usual default)"),
        ("SUCCESS", "report delivery"),
        ("DELAY", "report delays"),
        ("NEVER", "never send a DSN"),
    ),
    "BODY": (("8BITMIME", "8-bit body"), ("7BIT", "plain ASCII body")),
}


@pure
def test_known_verbs_and_their_order() -> None:
    assert command_line.KNOWN_VERBS == OLD_KNOWN_VERBS == tuple(verbs())


@pure
def test_verbs_that_take_no_argument() -> None:
    """commands.NO_ARGUMENT_VERBS was this set (RFC 5321 §4.1.1.4, .5, .10; RFC 3207 §4)."""
    no_argument = {name for name, row in verbs().items() if row.argument == "none"}
    assert no_argument == {"DATA", "RSET", "QUIT", "STARTTLS"}


@pure
def test_the_dialogues_tables() -> None:
    assert dialogue.ALLOWED_PHASES == OLD_ALLOWED_PHASES
    assert list(dialogue.ALLOWED_PHASES) == list(OLD_ALLOWED_PHASES)  # valid_verbs' order
    assert dialogue.SUCCESS_TRANSITIONS == OLD_SUCCESS_TRANSITIONS
    assert dialogue.EXPECTED_CODES == OLD_EXPECTED_CODES
    assert dialogue.GROUP_ENDERS == OLD_GROUP_ENDERS


@pure
def test_the_checkers_parameters() -> None:
    """checker.PARAMETER_KEYWORDS was OLD_PARAMETER_KEYWORDS, in this order (completion's)."""
    keywords = {
        name: {key: parameter.extension for key, parameter in row.parameters.items()}
        for name, row in verbs().items()
        if row.parameters
    }
    assert keywords == OLD_PARAMETER_KEYWORDS
    assert [list(p) for p in keywords.values()] == [
        list(p) for p in OLD_PARAMETER_KEYWORDS.values()
    ]
    assert verbs()["MAIL"].parameters["BODY"].values == ("7BIT", "8BITMIME", "BINARYMIME")


@pure
def test_what_the_checker_says_about_arguments() -> None:
    missing = {name: row.missing_argument for name, row in verbs().items() if row.missing_argument}
    assert missing == {
        "EHLO": "hello_without_name",
        "HELO": "hello_without_name",
        "AUTH": "auth_without_mechanism",
        "VRFY": "argument_required",
        "EXPN": "argument_required",
    }
    assert {name for name, row in verbs().items() if row.argument == "path"} == {"MAIL", "RCPT"}
    assert (verbs()["MAIL"].path_keyword, verbs()["RCPT"].path_keyword) == ("FROM", "TO")


@pure
def test_the_extensions_the_checker_asks_for() -> None:
    extensions = {name: row.extension for name, row in verbs().items() if row.extension}
    # STARTTLS, AUTH and BDAT were the checker's own; ETRN and ATRN came with the table.
    assert extensions == {
        "STARTTLS": "STARTTLS",
        "AUTH": "AUTH",
        "BDAT": "CHUNKING",
        "ETRN": "ETRN",
        "ATRN": "ATRN",
    }


@pure
def test_the_historys_block_enders() -> None:
    assert {"AUTH", "DATA", "BDAT"} == history._BLOCK_ENDERS


@pure
def test_the_knowledge_bases_contexts() -> None:
    old = """
        GREETING EHLO HELO LHLO STARTTLS AUTH MAIL RCPT DATA DOT BDAT RSET NOOP VRFY EXPN HELP
        QUIT ETRN ATRN TURN BURL XCLIENT XFORWARD
    """
    assert set(old.split()) == knowledge.CONTEXTS


@pure
def test_completions_english_texts() -> None:
    assert {name: row.hint.in_language("en") for name, row in verbs().items()} == OLD_VERB_HINTS
    parameters = {
        name: (p.insert, p.hint.in_language("en"))
        for row in verbs().values()
        for name, p in row.parameters.items()
    }
    assert parameters == OLD_PARAMETER_INSERTS
    values = {
        name: tuple((o.value, o.hint.in_language("en")) for o in p.offers)
        for row in verbs().values()
        for name, p in row.parameters.items()
        if p.offers
    }
    assert values == OLD_PARAMETER_VALUES


# -- a broken file is a clear error naming the key -----------------------------------------


def broken(change: Any) -> str:
    data = copy.deepcopy(raw_table())
    change(data)
    with pytest.raises(VerbTableError) as caught:
        parse_verbs(data)
    return str(caught.value)


@pure
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["RCPT"].update(phases=["mail", "redy"]),
            "[RCPT].phases[1]: 'redy' is not a phase",
        ),
        (lambda d: d["MAIL"].update(success="sending"), "[MAIL].success: 'sending' is not a phase"),
        (lambda d: d["ETRN"]["hint"].pop("zh"), "[ETRN].hint.zh: must be a non-empty string"),
        (lambda d: d["ETRN"]["hint"].update(fr="x"), "[ETRN].hint.fr: not a language"),
        (lambda d: d["QUIT"].update(argument="never"), "[QUIT].argument: 'never' is not one of"),
        (
            lambda d: d["QUIT"].update(codes=[221, 999]),
            "[QUIT].codes: must be a list of reply codes",
        ),
        (lambda d: d["QUIT"].pop("ends_group"), "[QUIT].ends_group: must be true or false"),
        (lambda d: d["QUIT"].update(ends_gruop=True), "[QUIT].ends_gruop: unknown field"),
        (lambda d: d["BDAT"].update(extension="chunking"), "[BDAT].extension: 'chunking' is not"),
        (
            lambda d: d["BDAT"].update(followed_by="text"),
            "[BDAT].followed_by: 'text' is not one of",
        ),
        (
            lambda d: d["QUIT"].update(path_keyword="TO"),
            '[QUIT].path_keyword: only for argument = "path"',
        ),
        (
            lambda d: d["MAIL"]["parameters"]["SIZE"].pop("extension"),
            "[MAIL].parameters.SIZE.extension: must be a non-empty string",
        ),
        (
            lambda d: d["MAIL"]["parameters"]["BODY"].pop("bad_value"),
            "[MAIL].parameters.BODY.bad_value: needed with `values`",
        ),
        (
            lambda d: d["RCPT"]["parameters"]["NOTIFY"]["offers"][1]["hint"].pop("zh"),
            "[RCPT].parameters.NOTIFY.offers[1].hint.zh",
        ),
        (lambda d: d.update(quit={}), "[quit]: a verb is written in capitals"),
        (lambda d: d.update(languages=["zh"]), 'languages: a list of language codes with "en"'),
    ],
)
def test_a_broken_table_names_the_key(change: Any, expected: str) -> None:
    assert expected in broken(change)
    assert broken(change).startswith("verbs.toml: ")


# -- an extension verb is one table --------------------------------------------------------

XTUTOR = """

[XTUTOR]
syntax = "XTUTOR <topic>"
rfc = "none: made up for the tests"
argument = "required"
phases = ["ready", "mail"]
codes = [250]
ends_group = true
extension = "XTUTOR"
hint.en = "ask the server for a lesson"
hint.zh = "向服务器要一节课"
description.en = "A made-up extension verb: proof that a new verb is one table."
description.zh = "一个虚构的扩展命令：证明新增一个命令只需一张表。"
"""

PROOF = """
import sys
sys.path.insert(0, sys.argv[1])
import smtp_tutor
assert smtp_tutor.__file__.startswith(sys.argv[1]), smtp_tutor.__file__

from smtp_tutor.console.completion import SMTPCompleter
from smtp_tutor.console.history import stateless_refusal
from smtp_tutor.core.checker import check
from smtp_tutor.core.dialogue import ALLOWED_PHASES, Dialogue, Phase, ends_group
from smtp_tutor.core.knowledge import CONTEXTS
from smtp_tutor.core.replies import make_reply

def session(*caps, hello="EHLO"):
    d = Dialogue()
    d.receive(make_reply(220, "mx.example ESMTP"))
    d.send(f"{hello} client.example")
    d.receive(make_reply(250, "mx.example", *caps))
    return d

def ids(line, d):
    return [f.id for f in check(line, d)]

def offers(d, text, lang):
    c = SMTPCompleter(lambda: d, hostname="client.example", lang=lang)
    return {x.text: x.display_meta_text for x in c.completions_for(text)}

# The dialogue: where it may be sent, that it ends a pipelined group, what success is.
d = session("PIPELINING", "XTUTOR")
assert ALLOWED_PHASES["XTUTOR"] == {Phase.READY, Phase.MAIL}
assert d.allowed("XTUTOR") and "XTUTOR" in d.valid_verbs()
assert ends_group("xtutor")
d.send("XTUTOR smtp")
assert d.receive(make_reply(250, "here it is")).success

# The checker: a known verb, its argument, its sequence and its EHLO keyword.
d = session("PIPELINING", "XTUTOR")
assert ids("XTUTOR smtp", d) == []
assert ids("XTUTOR", d) == ["argument_required"]
assert ids("XTUTOR smtp", session("PIPELINING")) == ["not_advertised"]
assert check("XTUTOR smtp", session("PIPELINING"))[0].params == {"keyword": "XTUTOR"}
assert ids("XTUTOR smtp", session(hello="HELO")) == ["extension_after_helo"]
greeted = Dialogue()
greeted.receive(make_reply(220, "mx.example ESMTP"))
assert ids("XTUTOR smtp", greeted) == ["needs_hello"]
d.send("MAIL FROM:<a@example.com>")
d.receive(make_reply(250, "ok"))
d.send("RCPT TO:<b@example.com>")
d.receive(make_reply(250, "ok"))
assert ids("XTUTOR smtp", d) == ["out_of_sequence"]

# Completion: offered with its hint, in the console's language.
d = session("PIPELINING", "XTUTOR")
assert offers(d, "XT", "en") == {"XTUTOR": "ask the server for a lesson"}
assert offers(d, "XT", "zh") == {"XTUTOR": "向服务器要一节课"}
assert offers(d, "", "zh")["XTUTOR"] == "向服务器要一节课"
d.send("MAIL FROM:<a@example.com>")
d.receive(make_reply(250, "ok"))
d.send("RCPT TO:<b@example.com>")
d.receive(make_reply(250, "ok"))
assert offers(d, "XT", "zh") == {"XTUTOR": "此时不可用：向服务器要一节课"}

# The history keeps it; the knowledge base explains replies to it.
assert stateless_refusal("XTUTOR") is None
assert "XTUTOR" in CONTEXTS
print("known everywhere")
"""


def package_with(extra: str, where: Path) -> Path:
    """A copy of the package whose verbs.toml has `extra` appended; no Python changed."""
    shutil.copytree(
        ROOT / "smtp_tutor", where / "smtp_tutor", ignore=shutil.ignore_patterns("__pycache__")
    )
    table = where / "smtp_tutor" / "data" / "verbs.toml"
    table.write_text(table.read_text("utf-8") + extra, "utf-8")
    return where


def test_a_new_extension_verb_is_one_table_and_everything_knows_it(tmp_path: Path) -> None:
    assert verb("XTUTOR") is None  # the shipped table does not have it
    copied = package_with(XTUTOR, tmp_path)
    for module in (copied / "smtp_tutor").rglob("*.py"):  # the Python is the same to the byte
        original = ROOT / module.relative_to(copied)
        assert module.read_bytes() == original.read_bytes(), module
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PROOF), str(copied)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "known everywhere"


@pure
def test_completion_offers_a_real_extension_verb_in_chinese() -> None:
    d = dialogue.Dialogue()
    d.receive(make_reply(220, "mx.example ESMTP"))
    d.send("EHLO client.example")
    d.receive(make_reply(250, "mx.example", "ETRN"))
    found = SMTPCompleter(lambda: d, hostname="client.example", lang="zh").completions_for("ET")
    assert [(c.text, c.display_meta_text) for c in found] == [
        ("ETRN", "请求服务器投递为某个域名排队的邮件")
    ]
