"""The webhook notifier: POSTs every terminal task with a ``notify_url`` to that URL.

The notification itself is made by PostgreSQL in the transaction that ends the task (the
trigger of migration 0012), whichever process ended it (a kill in the API, the worker, the
reconciler), once. One pass (``Notifier.run_pass``, run by every API replica about once a
second) delivers the due ones, each under its row lock (``FOR UPDATE SKIP LOCKED``), so two
replicas never send the same one at the same time. Every attempt is recorded (time, status code
or error, duration); a non-2xx answer or no answer is retried with exponential backoff until
``settings.webhook_max_attempts``, then the notification is marked failed. A pass with nothing
due is one cheap statement, in the pass's own thread.

Delivery is at least once (a replica dying between the receiver's 2xx and the commit sends it
again later): receivers dedupe by ``X-Orchestrator-Delivery``. The request goes only to the URL
the user gave: no redirects followed, no proxies or netrc from the environment, a timeout.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from orchestrator.bootstrap import Services
from orchestrator.db.notifications import Claim
from orchestrator.domain.task import TaskView
from orchestrator.domain.webhook import (
    DeliveryState,
    after_attempt,
    build_request,
    delivered,
    forbidden_address,
)
from orchestrator.settings import Settings
from orchestrator.ticker import Ticker

log = logging.getLogger(__name__)

# Renders a task as the JSON document delivered (the query_task body; given by the API layer).
Render = Callable[[Services, TaskView], Mapping[str, Any]]

# Deliveries sent in parallel by one replica, so one slow receiver does not hold up the rest.
THREADS = 4
# Per thread and pass: bounded so that new terminal tasks get their notification row soon.
MAX_PER_THREAD = 25
# Keep at most this much of an error message in the attempt record.
MAX_ERROR_CHARS = 300


@dataclass
class NotifyReport:
    delivered: list[str] = field(default_factory=list)  # notification ids
    retrying: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


class Notifier:
    def __init__(self, services: Services, render: Render, *, threads: int = THREADS) -> None:
        self._services = services
        self._render = render
        self._threads = threads
        self._repo = services.notifications
        self._settings = services.settings

    def run_pass(self) -> NotifyReport:
        report = NotifyReport()
        if not self._repo.any_due():
            return report
        if self._threads <= 1:
            self._drain(report)
        else:
            with ThreadPoolExecutor(self._threads, thread_name_prefix="notify") as pool:
                for future in [pool.submit(self._drain, report) for _ in range(self._threads)]:
                    future.result()
        if report.delivered or report.failed or report.retrying:
            log.info(
                "webhooks",
                extra={
                    "delivered": report.delivered,
                    "retrying": report.retrying,
                    "failed": report.failed,
                },
            )
        return report

    def _drain(self, report: NotifyReport) -> None:
        for _ in range(MAX_PER_THREAD):
            with self._repo.claim_due() as claim:
                if claim is None:
                    return
                state = self._attempt(claim)
            # list.append is atomic under the GIL: the pass's threads share the report.
            n_id = claim.notification.id
            if state is DeliveryState.DELIVERED:
                report.delivered.append(n_id)
            elif state is DeliveryState.FAILED:
                report.failed.append(n_id)
            else:
                report.retrying.append(n_id)

    def _attempt(self, claim: Claim) -> DeliveryState:
        n = claim.notification
        settings = self._settings
        at = claim.now()
        started = time.monotonic()
        status_code: int | None = None
        error: str | None = None
        try:
            task = self._services.tasks.get(n.task_id)
            if task is None:  # deleted meanwhile (the row cascades away with it)
                raise LookupError(f"task {n.task_id} no longer exists")
            document = self._render(self._services, task)
            # Wall-clock seconds: receivers compare the timestamp with their own clock.
            request = build_request(
                settings.webhook_secret, n.event, n.id, int(time.time()), document
            )
            status_code, error = _post(n.url, request.headers, request.body, settings)
        except Exception as exc:  # rendering (presigning) failed: count it as a failed attempt
            error = f"{type(exc).__name__}: {exc}"
        duration_s = round(time.monotonic() - started, 3)
        outcome = after_attempt(
            len(n.attempts) + 1,
            delivered(status_code),
            now=claim.now(),
            max_attempts=settings.webhook_max_attempts,
            base_s=settings.webhook_backoff_s,
        )
        claim.record(
            {
                "at": at.isoformat(),
                "status_code": status_code,
                "error": None if error is None else error[:MAX_ERROR_CHARS],
                "duration_s": duration_s,
            },
            outcome,
        )
        if outcome.state is DeliveryState.FAILED:
            log.warning(
                "webhook given up",
                extra={"task_id": n.task_id, "delivery": n.id, "attempts": len(n.attempts) + 1},
            )
        return outcome.state


def _post(
    url: str, headers: dict[str, str], body: bytes, settings: Settings
) -> tuple[int | None, str | None]:
    """POST once; (status code, None) on an answer, (None, error) on none."""
    if not settings.webhook_allow_private:
        refusal = _private_target(url)
        if refusal:
            return None, refusal
    with requests.Session() as http:
        http.trust_env = False  # no proxy or netrc from the environment: only the given URL
        try:
            # stream=True: the answer's body is never read, so a receiver cannot feed us a
            # large one; closing the response drops the connection.
            with http.post(
                url,
                data=body,
                headers=headers,
                timeout=settings.webhook_timeout_s,
                allow_redirects=False,
                stream=True,
            ) as response:
                code = response.status_code
        except requests.RequestException as exc:
            return None, f"{type(exc).__name__}: {exc}"
    if 300 <= code < 400:
        return code, "redirect not followed"
    return code, None


def _private_target(url: str) -> str | None:
    """A reason to refuse ``url`` when its host resolves to a non-public address, else None.

    Checked at each attempt, so a name that later resolves inward is refused then too (the
    connection itself still resolves again: a rebinding window remains, as in most senders).
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        return f"cannot resolve {host}: {exc}"
    bad = sorted({str(info[4][0]) for info in infos if forbidden_address(str(info[4][0]))})
    if bad:
        return f"refused: {host} resolves to a non-public address ({', '.join(bad)})"
    return None


class NotifyLoop(Ticker):
    """Runs ``Notifier.run_pass`` in a background thread of the API process."""

    def __init__(self, services: Services, render: Render, interval_s: float | None = None) -> None:
        super().__init__(
            "notifier",
            Notifier(services, render).run_pass,
            interval_s or services.settings.webhook_interval_s,
            stop_timeout_s=15.0,
        )
