"""How the sandbox server writes to its Maildir without holding up its connections.

`Mailbox.add` is blocking file I/O. For an asyncio server that serves a classroom (or a
benchmark's 500 clients) it matters where that I/O runs and what it costs:

* A small message is written in the event loop: eight quick system calls cost less than a
  hand-off to a thread. Big messages, and every message while the disk is slow, go to
  worker threads instead, so one slow write never stalls every connection.
* Creating the file is the costly part of a write, and the part that waits when the disk
  is slow: on a crowded virtual disk it swings from 0.03 ms to over 1 ms, on NFS it is a
  round trip. Once messages come in quick succession, a thread keeps a few empty files
  ready in tmp/ (`SpareFiles`), so the loop only writes, closes and renames. With each
  create made to wait 0.5 ms, 500 clients got 997 msg/s with spares and 651 without
  (a bare aiosmtpd Sink: 1,183); on a quick disk the two are level.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from smtp_tutor.sandbox.storage import Mailbox, Spare, spare_owner

log = logging.getLogger(__name__)

INLINE_LIMIT = 64 * 1024  # bigger messages are always written in a thread
SLOW_WRITE = 0.001  # seconds: a write in the event loop slower than this holds up everyone;
RECENT_WRITES = 16  # when more than half of this many recent ones were slow, the disk is,
THREADS_AFTER_SLOW_WRITES = 10.0  # and every write goes to a thread for this long
BUSY_GAP = 0.05  # seconds: two messages closer than this mean traffic, worth spare files
SPARES = 32  # spare files kept ready; more are made when fewer than half are left


class SpareFiles:
    """Empty files made ahead in tmp/ by a thread, handed out one per message.

    A spare is named `<key>.spare`, so Maildir readers (which ignore tmp/ anyway) and a
    later sandbox can tell it apart: spares left by a process that is gone (killed before
    it could clean up) are removed when the next one starts. `close` removes the unused
    ones, so a stopped server leaves tmp/ empty.
    """

    def __init__(self, mailbox: Mailbox, count: int = SPARES) -> None:
        self.mailbox = mailbox
        self.count = count
        self._ready: collections.deque[Spare] = collections.deque()
        self._wanted = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._fill, name="smtp-tutor-spares", daemon=True)

    def start(self) -> None:
        self._wanted.set()
        self._thread.start()

    def take(self) -> Spare | None:
        """A spare file, or None when none is ready (the caller creates its own)."""
        try:
            spare = self._ready.popleft()
        except IndexError:
            spare = None
        if len(self._ready) < self.count // 2 and not self._wanted.is_set():
            self._wanted.set()
        return spare

    def close(self, timeout: float = 5.0) -> None:
        """Stop making spares; close and remove the ones not used."""
        self._closing = True
        self._wanted.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        while self._ready:
            name, fd = self._ready.popleft()
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self.mailbox.path, "tmp", name))

    def _fill(self) -> None:
        self._remove_orphans()
        while True:
            self._wanted.wait()
            self._wanted.clear()
            while not self._closing and len(self._ready) < self.count:
                try:
                    self._ready.append(self.mailbox.make_spare())
                except OSError as error:  # the Maildir went away, or the disk is full
                    log.info("no spare files for now: %s", error)
                    break
            if self._closing:
                return

    def _remove_orphans(self) -> None:
        """Spares of a sandbox process that no longer runs (killed before its clean-up)."""
        tmp = self.mailbox.path / "tmp"
        with contextlib.suppress(OSError):
            for entry in os.scandir(tmp):
                owner = spare_owner(entry.name)
                if owner is None or owner == os.getpid() or _running(owner):
                    continue
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, but is somebody else's
        return True
    return True


class MailboxWriter:
    """`Mailbox.add` for an asyncio server: in the loop while the disk is quick, else in threads.

    In the loop a small message costs ~0.1 ms on a good disk, less than a hand-off to a
    thread, which under load costs GIL switches and two more turns of the loop before the
    250 (bench/sandbox_load.py: ~0.2 ms more CPU per message). But a slow disk - a home
    directory on NFS in a computer lab - would stall every connection while it writes, so
    big messages always go to worker threads, and while most recent writes in the loop
    took over a millisecond, so do all the others. The threads share one queue, and each
    batch of finished messages wakes the loop once. Either way `add` returns when the files
    are in place, so the 250 that follows is true. `file`, if given, runs right after each
    store, where the store ran, with the key and envelope: the accounts' copies
    (sandbox/accounts.py) are in place before the 250 too.
    """

    def __init__(
        self,
        mailbox: Mailbox,
        threads: int = 4,
        file: Callable[[str, Mapping[str, Any]], None] | None = None,
    ) -> None:
        self.mailbox = mailbox
        self._file = file
        self._thread_count = threads
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._finished: list[tuple[asyncio.Future[str], str, Exception | None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._threads: list[threading.Thread] = []
        self._threads_until = 0.0  # monotonic time until which every write goes to a thread
        self._recent_slow: collections.deque[bool] = collections.deque(maxlen=RECENT_WRITES)
        self._last_write = -BUSY_GAP  # monotonic time of the last message
        self.spares: SpareFiles | None = None  # started when messages come quickly

    @property
    def offloading(self) -> bool:
        """True while recent slowness sends every write to a thread."""
        return time.monotonic() < self._threads_until

    async def add(self, raw: bytes, envelope: Mapping[str, Any]) -> str:
        started = time.monotonic()
        if self.spares is None and started - self._last_write < BUSY_GAP:
            self.spares = SpareFiles(self.mailbox)
            self.spares.start()
        self._last_write = started
        if len(raw) <= INLINE_LIMIT and not self.offloading:
            key = self._store(raw, envelope)
            finished = time.monotonic()
            # Most recent writes slow, not one or two: a hiccup is not a slow disk.
            self._recent_slow.append(finished - started > SLOW_WRITE)
            if sum(self._recent_slow) > RECENT_WRITES // 2:
                log.info("slow Maildir writes: writing in threads for a while")
                self._threads_until = finished + THREADS_AFTER_SLOW_WRITES
                self._recent_slow.clear()  # afterwards the loop tries again from scratch
            return key
        return await self.add_in_thread(raw, envelope)

    async def add_in_thread(self, raw: bytes, envelope: Mapping[str, Any]) -> str:
        loop = asyncio.get_running_loop()
        if not self._threads:
            self._start(loop)
        future: asyncio.Future[str] = loop.create_future()
        self._queue.put((raw, envelope, future))
        return await future

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, end the threads, remove unused spares (within `timeout` s).

        Waiting means that once the server has stopped, nothing more appears in the
        Maildir. The threads are daemons: a stuck disk cannot keep the program alive.
        """
        threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(None)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        spares, self.spares = self.spares, None
        if spares is not None:
            spares.close(max(0.0, deadline - time.monotonic()))

    def _store(self, raw: bytes, envelope: Mapping[str, Any]) -> str:
        key = self.mailbox.add(raw, envelope, self._spare())
        if self._file is not None:
            self._file(key, envelope)
        return key

    def _spare(self) -> Spare | None:
        return self.spares.take() if self.spares is not None else None

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._threads = [
            threading.Thread(target=self._work, name="smtp-tutor-maildir", daemon=True)
            for _ in range(self._thread_count)
        ]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        loop = self._loop
        assert loop is not None
        while (job := self._queue.get()) is not None:
            raw, envelope, future = job
            key, error = "", None
            try:
                key = self._store(raw, envelope)
            except Exception as failure:  # handed to the waiting connection
                error = failure
            with self._lock:
                self._finished.append((future, key, error))
                first = len(self._finished) == 1
            if first:  # later ones ride on the same wake-up
                with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                    loop.call_soon_threadsafe(self._settle)

    def _settle(self) -> None:
        with self._lock:
            finished, self._finished = self._finished, []
        for future, key, error in finished:
            if future.done():  # the connection went away meanwhile
                continue
            if error is None:
                future.set_result(key)
            else:
                future.set_exception(error)


_Job = tuple[bytes, Mapping[str, Any], "asyncio.Future[str]"]


_Job = tuple[bytes, Mapping[str, Any], "asyncio.Future[str]"]
