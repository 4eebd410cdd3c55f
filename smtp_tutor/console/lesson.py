"""A guided lesson running inside the console: the text above, the real session below.

The runner watches what the console sends and what comes back, asks the step's kind
(`core.lessons.kinds`) whether a reply decides the step, and the judge (`core.lessons.judge`)
whether the step is done. It never sends anything itself: every line still goes to the
sandbox as the student typed it. Progress is saved after each step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from smtp_tutor.client.session import SessionEvent, TLSEvent, TLSFailed
from smtp_tutor.console.progress import Progress
from smtp_tutor.core.catalogue import message
from smtp_tutor.core.lessons import Lesson, Step, Text
from smtp_tutor.core.lessons.judge import Observation, hint_text, render_reason, verdict
from smtp_tutor.core.lessons.kinds import Answer, answer_of, kind_of
from smtp_tutor.core.pop3 import dialogue as pop3_dialogue
from smtp_tutor.lexer import highlight_fragments

if TYPE_CHECKING:
    from smtp_tutor.console.app import Console
    from smtp_tutor.sandbox.accounts import AccountMailboxes


@dataclass
class StepResult:
    step_id: str
    ok: bool
    reason: str = ""  # the verdict's reason id (lessons_ui.toml [reason]); "" when ok
    line: str = ""  # what was judged: the command line sent ("" for a message)
    code: int | str | None = None  # the reply code that decided (POP3: "+OK", "-ERR [...]")
    params: dict[str, str] = field(default_factory=dict)  # the reason's placeholders


class LessonRunner:
    """Follows one lesson through a console session, step by step."""

    def __init__(
        self, lesson: Lesson, progress: Progress, lang: str, mailbox: Path | None = None
    ) -> None:
        self.lesson = lesson
        self.progress = progress
        self.lang = lang
        self.mailbox = mailbox
        self.index = min(progress.step(lesson.id), len(lesson.steps))
        self.hint_level = 0
        self.results: list[StepResult] = []
        self.console: Console | None = None
        self._kept_line: str | None = None  # the line the step's kind keeps (auth: AUTH ...)
        self._awaiting_tls: Observation | None = None  # a step that waits for the handshake
        self._mailbox_count = 0
        # Called on :restart before reconnecting: the sandbox forgets what it remembered.
        self.on_restart: Callable[[], None] | None = None
        # `lesson --server`: told each judged step (its number from 1, passed or not), and
        # the class sandbox's web view, which keeps the messages this runner cannot read.
        self.on_result: Callable[[int, bool], None] | None = None
        self.remote_web: str | None = None

    # -- texts -------------------------------------------------------------------------

    def _text(self, text: Text | None) -> str:
        if text is None:
            return ""
        value, translated = text.get(self.lang)
        if not translated:
            value = f"{self._ui('not_translated')}\n{value}"
        return value

    def _ui(self, key: str, **params: object) -> str:
        return message("lessons_ui", key, self.lang, **params)

    def _say(self, text: str, style: str = "") -> None:
        if self.console is not None and text:
            self.console.print_text(text, style)

    @property
    def step(self) -> Step | None:
        steps = self.lesson.steps
        return steps[self.index] if self.index < len(steps) else None

    @property
    def finished(self) -> bool:
        return self.index >= len(self.lesson.steps)

    @property
    def passed(self) -> list[str]:
        return [r.step_id for r in self.results if r.ok]

    def toolbar_text(self) -> str:
        step = self.step
        if step is None:
            return self._ui("toolbar_done", title=self._text(self.lesson.title))
        goal = self._text(step.goal)
        return self._ui(
            "toolbar_step", number=self.index + 1, total=len(self.lesson.steps), goal=goal
        )

    # -- starting ----------------------------------------------------------------------

    def banner(self, sandbox_banner: str) -> str:
        """The sandbox's banner for this lesson: its last line, the console's generic start
        hint ("Start with: EHLO …"), becomes the step the student really starts with."""
        lines = sandbox_banner.splitlines()[:-1]
        step = self.step
        if step is None:
            lines.append(self._ui("banner_done"))
        else:
            goal, _translated = step.goal.get(self.lang)
            total = len(self.lesson.steps)
            lines.append(self._ui("banner_start", number=self.index + 1, total=total, goal=goal))
        return "\n".join(lines)

    def attach(self, console: Console) -> None:
        """Show the lesson's title, introduction and playback (before the session starts)."""
        self.console = console
        lesson = self.lesson
        self._say(f"━━ {lesson.number}. {self._text(lesson.title)} ━━", "class:banner")
        self._say(self._text(lesson.intro))
        if lesson.playback is not None:
            self._say(self._ui("playback_title"), "class:banner")
            if self.console is not None:
                self.console.show(highlight_fragments(lesson.playback.transcript.strip() + "\n"))
            self._say(self._text(lesson.playback.note), "class:notice")

    def begin(self) -> None:
        """The session is open: show the step to do now."""
        if self.index and not self.finished:
            self._say(self._ui("resuming", number=self.index + 1), "class:notice")
        if self.finished:
            self._say(self._ui("lesson_done", title=self._text(self.lesson.title)), "class:tls.ok")
            return
        self._announce()

    def _announce(self) -> None:
        step = self.step
        if step is None:
            return
        self._mailbox_count = self._count_messages()
        self.hint_level = 0
        self._kept_line = None
        self._awaiting_tls = None
        header = self._ui("step_header", number=self.index + 1, total=len(self.lesson.steps))
        self._say(f"\n{header}", "class:banner")
        self._say(self._text(step.explain))
        self._say(f"→ {self._text(step.goal)}", "class:toolbar.phase")
        if self._judged_remotely(step):
            self._say(self._ui("remote_mailbox", url=self.remote_web), "class:finding.warning")
        if step.manual and self.console is not None:
            self.console.options.manual = True

    # -- what the console reports ------------------------------------------------------

    def on_send(self, line: str, in_data: bool, auth_answer: bool) -> None:
        """A command line is about to go out: keep it if the step's kind wants it judged."""
        step = self.step
        if step is None or in_data or auth_answer:
            return
        if kind_of(step).keeps(step, line):
            self._kept_line = line

    def on_event(self, event: SessionEvent | object) -> None:
        """A session event of either protocol: a reply event carries its `Outcome`
        (`core.dialogue` or `core.pop3.dialogue`), which `answer_of` reads."""
        step = self.step
        if step is None:
            return
        if isinstance(event, TLSEvent | TLSFailed) and self._awaiting_tls is not None:
            observation, self._awaiting_tls = self._awaiting_tls, None
            self._judge(step, self._observe(observation.line, observation.code))
            return
        outcome = getattr(event, "outcome", None)
        answer = answer_of(outcome) if outcome is not None else None
        if answer is None:
            return
        line = kind_of(step).decisive(step, answer, self._kept_line)
        if line is not None:
            self._judge_reply(step, line, answer)

    def _judge_reply(self, step: Step, line: str, answer: Answer) -> None:
        observation = self._observe(line, answer.code, answer.multiline)
        if step.state.tls and answer.start_tls:
            self._awaiting_tls = observation  # judged once the handshake is over
            return
        self._judge(step, observation)

    def _observe(
        self, line: str, code: int | str | None, multiline: bool | None = None
    ) -> Observation:
        dialogue = self.console.session.dialogue if self.console and self.console.session else None
        headers: frozenset[str] = frozenset()
        defects = 0
        delivered = False
        if self.mailbox is not None and self._speaks_smtp:
            from smtp_tutor.sandbox.storage import Mailbox

            box = Mailbox(self.mailbox)  # count the files; read only the newest message
            latest = box.latest() if len(box) > self._mailbox_count else None
            if latest is not None:
                delivered = True
                headers = frozenset(name.lower() for name in latest.message)
                defects = len(latest.defects)
        step = self.step
        if step is not None and self._judged_remotely(step):
            delivered, headers, defects = _as_expected(step)
        return Observation(
            line=line,
            code=code,
            tls=bool(dialogue and dialogue.tls_active),
            authenticated=_logged_in(dialogue),
            delivered=delivered,
            headers=headers,
            defects=defects,
            multiline=multiline,
        )

    @property
    def _speaks_smtp(self) -> bool:
        """The step at hand sends mail (the sandbox's Maildir tells what it delivered)."""
        step = self.step
        return step is None or kind_of(step).protocol == "smtp"

    def _judged_remotely(self, step: Step) -> bool:
        """A step that checks the delivered message, on a class sandbox whose Maildir is not
        here: judged on the reply alone (the message is in the web view)."""
        state = step.state
        needs = state.delivered is not None or bool(state.headers) or state.no_defects is not None
        return needs and self.mailbox is None and self.remote_web is not None

    def _report(self, number: int, passed: bool) -> None:
        if self.on_result is not None:
            self.on_result(number, passed)

    def _judge(self, step: Step, observation: Observation) -> None:
        result = verdict(step, observation)
        self._report(self.index + 1, result.ok)
        if result.ok:
            self.results.append(StepResult(step.id, True))
            self._say(f"✓ {self._text(step.goal)}", "class:tls.ok")
            self._say(self._text(step.success), "class:notice")
            self.index += 1
            self.progress.mark_step(self.lesson.id, self.index, step.id)
            if step.manual and self.console is not None:
                self.console.options.manual = False
            if self.finished:
                self._finish()
            else:
                self._announce()
            return
        self.results.append(
            StepResult(
                step.id,
                False,
                result.reason,
                observation.line,
                observation.code,
                dict(result.params),
            )
        )
        reason = render_reason(result, self.lang)
        self._say(f"✗ {reason}", "class:finding.error")
        text, self.hint_level = hint_text(step, self.hint_level, self.lang)
        self._say(f"  {self._ui('hint_label')} {text}", "class:finding.warning")

    def _finish(self) -> None:
        self.progress.mark_completed(self.lesson.id)
        self._say(self._text(self.lesson.outro), "class:notice")
        self._say(self._ui("lesson_done", title=self._text(self.lesson.title)), "class:tls.ok")

    def _count_messages(self) -> int:
        if self.mailbox is None or not self._speaks_smtp:
            return 0
        from smtp_tutor.sandbox.storage import Mailbox

        return len(Mailbox(self.mailbox))

    # -- lesson commands ---------------------------------------------------------------

    def hint(self) -> None:
        step = self.step
        if step is None:
            self._say(self._ui("lesson_done", title=self._text(self.lesson.title)))
            return
        text, self.hint_level = hint_text(step, self.hint_level, self.lang)
        self._say(f"  {self._ui('hint_label')} {text}", "class:finding.warning")

    def skip(self) -> None:
        if self.step is None:
            return
        self._say(self._ui("skipped", number=self.index + 1), "class:notice")
        self.index += 1
        self.progress.set_position(self.lesson.id, self.index)
        if self.finished:
            self._finish()
        else:
            self._announce()

    def back(self) -> None:
        self.index = max(0, self.index - 1)
        self.progress.set_position(self.lesson.id, self.index)
        self._announce()

    def restart(self) -> None:
        self.index = 0
        self.results.clear()
        self.progress.set_position(self.lesson.id, 0)
        self._announce()


def _as_expected(step: Step) -> tuple[bool, frozenset[str], int]:
    """What the step expects of the delivered message: (delivered, headers, defects)."""
    state = step.state
    delivered = state.delivered is not False
    headers = frozenset(header.lower() for header in state.headers)
    return delivered, headers, 0 if state.no_defects is not False else 1


def _logged_in(dialogue: object) -> bool:
    """Whether either protocol's dialogue has a login: SMTP's AUTH, POP3's PASS/APOP/AUTH."""
    if isinstance(dialogue, pop3_dialogue.Dialogue):
        return dialogue.authenticated_user is not None or dialogue.state in (
            pop3_dialogue.State.TRANSACTION,
            pop3_dialogue.State.UPDATE,
        )
    return bool(dialogue is not None and getattr(dialogue, "authenticated", False))


def file_setup_mail(accounts: AccountMailboxes, lesson: Lesson) -> int:
    """File the lesson's `[[setup.mail]]` into their accounts' mailboxes; how many were new.

    Stored as the sandbox stores mail it accepts (the shared Maildir, then a link in the
    account's), with an envelope that says it came from the lesson. A message whose
    Message-ID the account's mailbox holds already is not filed again, so taking a lesson
    twice does not fill the mailbox; one that lesson 16 deleted comes back.
    """
    import email.parser
    import email.policy

    parser = email.parser.BytesHeaderParser(policy=email.policy.default)
    filed = 0
    if lesson.setup_mail:
        accounts.shared.create()  # before an account's folder makes the shared one exist
    for mail in lesson.setup_mail:
        raw = mail.text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
        message_id = str(parser.parsebytes(raw).get("Message-ID", "")).strip()
        box = accounts.of(mail.account)
        if message_id and any(
            str(stored.message.get("Message-ID", "")).strip() == message_id
            for stored in box.messages()
        ):
            continue
        envelope = {
            "mail_from": "",
            "rcpt_tos": [mail.account],
            "auth_user": None,
            "lesson_setup": lesson.id,
            "accounts": [mail.account],
        }
        key = accounts.shared.add(raw, envelope)
        accounts.file(key, envelope)
        filed += 1
    return filed
