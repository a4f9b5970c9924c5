"""Kubernetes Events as an operator should get them: at most one per reason per minute, none lost.

Owns: ``EventReporter``. An Event of a reason that was posted less than a window ago is held and
posted when the window ends: delayed, never dropped. Several held in one window become one that
says the net change (``span``: first "from", last "to", how many steps) and the latest message.
A held Warning whose cause has cleared before its window ends (``resolve``) is not posted as if it
were current. A post that fails (any answer but 403, a timeout) is kept and tried again at the
next pass or a few seconds later; after ``ATTEMPTS`` it is given up with one WARNING, never
silently. The ``EventSender`` (``node_events``) does the POST.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from mig_labeler.errors import MigLabelerError

log = logging.getLogger("mig_labeler")

EVENT_WINDOW = 60.0  # at most one Event per reason per minute; later ones wait for the window's end
RETRY_AFTER = 5.0  # seconds before a failed post is tried again (or the next pass, if sooner)
ATTEMPTS = 3  # posts of one Event before it is given up (with a WARNING)


class EventNotPosted(MigLabelerError):
    """The POST failed in a way worth trying again (a 5xx, a timeout, a bad answer)."""


class EventSender(Protocol):
    def post(self, reason: str, message: str, event_type: str) -> bool:
        """True: posted (or never postable: no right to); False: not yet (no Node known), kept.
        Raises ``EventNotPosted`` when the attempt failed."""


@dataclass(frozen=True)
class _Pending:
    message: str
    event_type: str
    coalesced: int  # Events of this reason held back in this window; the latest is posted
    span: tuple[str, str] | None = None  # (from, to) of the held changes, first "from", last "to"
    attempts: int = 0  # failed posts
    retry_at: float = -math.inf  # not tried again before this


class EventReporter:
    def __init__(self, sender: EventSender, clock: Callable[[], float], window: float = EVENT_WINDOW) -> None:
        self.sender = sender
        self.clock = clock
        self.window = window
        self.last: dict[str, float] = {}
        self.pending: dict[str, _Pending] = {}

    def report(self, reason: str, message: str, event_type: str, span: tuple[str, str] | None = None) -> None:
        """``span``: what changed, from and to (``MIG layout`` A → B), for the net change of
        Events held in one window."""
        now = self.clock()
        held = self.pending.get(reason)
        if held is None:
            self.pending[reason] = _Pending(message, event_type, 1, span)
            if now - self.last.get(reason, -math.inf) >= self.window:
                self._post(reason, now)
            return
        if held.span is not None and span is not None:  # the net change: first "from", last "to"
            span = (held.span[0], span[1])
        self.pending[reason] = replace(held, message=message, event_type=event_type, coalesced=held.coalesced + 1,
                                       span=span)

    def resolve(self, reason: str) -> None:
        """The cause of a held Event has cleared (the layout matches again, a reload worked): it
        is not posted as if it were current."""
        if self.pending.pop(reason, None) is not None:
            log.debug("held Event %s dropped: its cause has cleared", reason)

    def due_in(self) -> float | None:
        """Seconds until the next held Event is due (0: now), None when none is held."""
        if not self.pending:
            return None
        now = self.clock()
        return max(0.0, min(self._due(r, held) - now for r, held in self.pending.items()))

    def _due(self, reason: str, held: _Pending) -> float:
        return max(self.last.get(reason, -math.inf) + self.window, held.retry_at)

    def flush(self, retry_now: bool = False) -> None:
        """Post every held Event whose window has ended. ``retry_now`` (a pass begins): failed
        posts are tried again without waiting out ``RETRY_AFTER``."""
        now = self.clock()
        for reason, held in list(self.pending.items()):
            due = self.last.get(reason, -math.inf) + self.window if retry_now else self._due(reason, held)
            if now >= due:
                self._post(reason, now)

    def _post(self, reason: str, now: float) -> None:
        held = self.pending[reason]
        try:
            posted = self.sender.post(reason, self._message(held), held.event_type)
        except EventNotPosted as e:
            if held.attempts + 1 >= ATTEMPTS:
                del self.pending[reason]
                log.warning("Event %s could not be posted in %d attempts (the last: %s); it is lost: %s", reason,
                            held.attempts + 1, e, self._message(held))
            else:
                self.pending[reason] = replace(held, attempts=held.attempts + 1, retry_at=now + RETRY_AFTER)
            return
        if posted:
            self.last[reason] = now
            del self.pending[reason]
        else:  # no Node known yet: again a little later, not in a busy loop
            self.pending[reason] = replace(held, retry_at=now + RETRY_AFTER)

    @staticmethod
    def _message(held: _Pending) -> str:
        if held.coalesced <= 1:
            return held.message
        if held.span is not None and held.span[0] != held.span[1]:
            return (f"{held.message} (net change of {held.coalesced} in the last minute: {held.span[0]} → "
                    f"{held.span[1]}; the log has each)")
        return f"{held.message} (the latest of {held.coalesced} in the last minute; the log has each)"
