"""``opply worker``: delivers webhooks until told to stop.

One loop fans events out to deliveries and claims due deliveries, as many as there are free
delivery threads (``WEBHOOK_CONCURRENCY``); each thread makes one attempt (HTTP outside any
transaction) and records it. Idle, the loop polls every ``WEBHOOK_POLL_INTERVAL`` seconds (no
LISTEN/NOTIFY: it works behind PgBouncer in transaction mode). SIGTERM or SIGINT stops the
claiming; attempts in flight finish (each is bounded by ``WEBHOOK_TIMEOUT``) and are recorded,
then the process exits 0. A worker killed outright loses nothing: its leases run out and another
worker (or this one, restarted) attempts those deliveries again.
"""

from __future__ import annotations

import logging
import signal
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from types import FrameType

from opply.application.dto import AttemptResult, ClaimedDelivery
from opply.application.unit_of_work import StoreUnavailable
from opply.application.webhooks import DeliverWebhooks

log = logging.getLogger("opply.webhooks")
FAN_OUT_BATCH = 500


class Worker:
    def __init__(self, deliver: DeliverWebhooks, *, concurrency: int, poll_interval: float) -> None:
        self._deliver = deliver
        self._concurrency = concurrency
        self._poll_interval = poll_interval
        self.stopping = threading.Event()

    def stop(self, *_: object) -> None:
        self.stopping.set()

    def run(self) -> None:
        """Until ``stop()``: fan out, claim, attempt; then let the attempts in flight finish."""
        in_flight: set[Future[None]] = set()
        with ThreadPoolExecutor(self._concurrency, thread_name_prefix="webhook") as pool:
            log.info("webhook worker started", extra={"concurrency": self._concurrency})
            while not self.stopping.is_set():
                in_flight = {f for f in in_flight if not f.done()}
                busy = self._step(pool, in_flight)
                if len(in_flight) >= self._concurrency:
                    wait(in_flight, timeout=self._poll_interval, return_when=FIRST_COMPLETED)
                elif not busy:
                    self.stopping.wait(self._poll_interval)
            log.info("webhook worker stopping", extra={"in_flight": len(in_flight)})
            wait(in_flight)
        log.info("webhook worker stopped")

    def _step(self, pool: ThreadPoolExecutor, in_flight: set[Future[None]]) -> bool:
        """One round; True if it found work (so the loop goes on without waiting)."""
        try:
            fanned = self._deliver.fan_out(FAN_OUT_BATCH)
            free = self._concurrency - len(in_flight)
            claimed = self._deliver.claim(free) if free > 0 else []
        except StoreUnavailable as lost:
            log.warning("webhook worker: database unavailable", extra={"detail": lost.detail})
            self.stopping.wait(self._poll_interval)
            return False
        for one in claimed:
            in_flight.add(pool.submit(self._attempt, one))
        return bool(claimed) or bool(fanned)

    def _attempt(self, claimed: ClaimedDelivery) -> None:
        try:
            result = self._deliver.attempt(claimed)
        except StoreUnavailable as lost:
            # Sent (or not) but not recorded: the lease runs out and it is attempted again.
            log.warning(
                "webhook attempt not recorded: database unavailable",
                extra={**_ids(claimed), "detail": lost.detail},
            )
            return
        except Exception:
            log.exception("webhook attempt failed unexpectedly", extra=_ids(claimed))
            return
        _log_attempt(claimed, result)


def _ids(claimed: ClaimedDelivery) -> dict[str, object]:
    return {
        "delivery_id": claimed.delivery_id,
        "event_id": claimed.event.id,
        "event_type": claimed.event.type,
        "endpoint_id": claimed.endpoint_id,
        "attempt": claimed.attempt,
    }


def _log_attempt(claimed: ClaimedDelivery, result: AttemptResult) -> None:
    """One JSON line per attempt (entrypoints/jsonlog.py)."""
    log.info(
        "webhook attempt",
        extra={
            **_ids(claimed),
            "status": result.status.value,
            "status_code": result.status_code,
            "error": result.error,
            "duration_ms": result.duration_ms,
            "next_attempt_at": result.next_attempt_at,
        },
    )


def stop_on_signals(worker: Worker) -> None:
    """SIGTERM (docker stop, Kubernetes, ECS) and SIGINT (Ctrl-C) stop the worker gently."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("webhook worker got %s", signal.Signals(signum).name)
        worker.stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
