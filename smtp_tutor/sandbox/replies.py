"""Enhanced status codes (RFC 3463) for every reply the sandbox sends.

The sandbox advertises ENHANCEDSTATUSCODES, and RFC 2034 then requires a `class.subject.
detail` code on every 2xx/4xx/5xx reply except the greeting and the HELO/EHLO answer.
The sandbox's own replies carry well-chosen codes already; aiosmtpd's built-in ones
(`250 OK`, `503 Error: need RCPT command`, ...) often carry none. Rather than copy
aiosmtpd's command methods to change their strings, every outgoing line passes through
`with_enhanced_code`, which inserts the conventional code for its reply code (the ones
Postfix uses) when the line has none. 3xx replies (334, 354) never carry one.

`sandbox_reply` also corrects aiosmtpd wording that would teach a mistake: its syntax hint
`MAIL FROM: <address>` shows a space after the colon, which RFC 5321 section 3.3 forbids.
"""

from __future__ import annotations

import re

ENHANCED_CODE = re.compile(r"^[245]\d\d[ -][245]\.\d{1,3}\.\d{1,3}(?: |$)")
_REPLY_LINE = re.compile(r"^([245])(\d\d)([ -])(.*)$", re.DOTALL)

BY_REPLY_CODE: dict[str, str] = {
    "211": "2.0.0",
    "214": "2.0.0",
    "220": "2.0.0",
    "221": "2.0.0",
    "235": "2.7.0",
    "250": "2.0.0",
    "251": "2.1.5",
    "252": "2.0.0",
    "421": "4.3.0",
    "450": "4.2.0",
    "451": "4.3.0",
    "452": "4.3.1",
    "454": "4.7.0",
    "500": "5.5.2",
    "501": "5.5.4",
    "502": "5.5.1",
    "503": "5.5.1",
    "504": "5.5.4",
    "530": "5.7.0",
    "534": "5.7.9",
    "535": "5.7.8",
    "538": "5.7.11",
    "550": "5.0.0",
    "552": "5.3.4",
    "553": "5.1.3",
    "554": "5.3.0",
    "555": "5.5.4",
}


_WORDING = (
    ("MAIL FROM: <address> [SP <mail-parameters>]", "MAIL FROM:<address> [parameters]"),
    ("RCPT TO: <address> [SP <mail-parameters>]", "RCPT TO:<address> [parameters]"),
    ("MAIL FROM: <address>", "MAIL FROM:<address>"),
    ("RCPT TO: <address>", "RCPT TO:<address>"),
)


def sandbox_reply(line: str) -> str:
    """The line as the sandbox sends it: right wording, with an enhanced status code."""
    for wrong, right in _WORDING:
        line = line.replace(wrong, right)
    return with_enhanced_code(line)


def with_enhanced_code(line: str) -> str:
    """`line` with an enhanced status code after the reply code, unless it has one."""
    match = _REPLY_LINE.match(line)
    if match is None or ENHANCED_CODE.match(line):
        return line
    klass, rest, separator, text = match.groups()
    enhanced = BY_REPLY_CODE.get(klass + rest, f"{klass}.0.0")
    return (
        f"{klass}{rest}{separator}{enhanced} {text}"
        if text
        else f"{klass}{rest}{separator}{enhanced}"
    )
