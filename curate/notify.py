"""Failure notifications: who hears that a nightly run failed or held its release.

A notifier is anything with ``notify(event)``.  :class:`LogNotifier` is always on; :class:`WebhookNotifier` POSTs
the event as JSON to ``CURATE_NOTIFY_WEBHOOK`` (a chat webhook, an alerting endpoint).  A notifier never raises:
a dead webhook must not turn a held release into a crash, it is logged instead.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Protocol

import requests

LOG = logging.getLogger("curate.notify")


@dataclass(frozen=True)
class RunEvent:
    """Something an operator must hear about: ``kind`` is ``failed`` (the run stopped) or ``held`` (nothing published)."""

    kind: str
    run: str
    message: str
    warehouse: str = ""

    def as_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)

    def text(self) -> str:
        what = "failed" if self.kind == "failed" else "held its release (nothing published)"
        return f"curate run {self.run} {what}: {self.message}"


class Notifier(Protocol):
    def notify(self, event: RunEvent) -> None: ...


class LogNotifier:
    """Writes the event to the ``curate.notify`` log (and so to the Prefect run's log when inside a run)."""

    def __init__(self, logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None) -> None:
        self.logger = logger or LOG

    def notify(self, event: RunEvent) -> None:
        self.logger.error("%s", event.text())


class WebhookNotifier:
    """POSTs ``{"kind", "run", "message", "warehouse", "text"}`` as JSON; a delivery failure is logged, not raised."""

    def __init__(self, url: str, timeout: float = 10.0, session: requests.Session | None = None) -> None:
        self.url = url
        self.timeout = timeout
        self.session = session or requests.Session()

    def notify(self, event: RunEvent) -> None:
        try:
            response = self.session.post(self.url, json={**event.as_dict(), "text": event.text()}, timeout=self.timeout)
            response.raise_for_status()
        except requests.RequestException as exc:
            LOG.error("could not notify %s of run %s: %s", self.url, event.run, exc)


def notifiers(webhook: str, logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None) -> list[Notifier]:
    """The log, and the webhook when one is set."""
    found: list[Notifier] = [LogNotifier(logger)]
    if webhook:
        found.append(WebhookNotifier(webhook))
    return found


def notify_all(found: list[Notifier], event: RunEvent) -> None:
    for notifier in found:
        try:
            notifier.notify(event)
        except Exception:  # a notifier of one's own making must not hide the run's own outcome
            LOG.exception("notifier %r failed", notifier)
