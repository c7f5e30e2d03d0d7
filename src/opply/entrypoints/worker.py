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
import time
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
            next_fan_out = 0.0
            while not self.stopping.is_set():
                in_flight = {f for f in in_flight if not f.done()}
                found = False
                try:
                    if time.monotonic() >= next_fan_out:
                        # Again at once after a full batch; otherwise after a poll interval.
                        fanned = self._deliver.fan_out(FAN_OUT_BATCH)
                        found = fanned == FAN_OUT_BATCH
                        next_fan_out = time.monotonic() + (0 if found else self._poll_interval)
                    free = self._concurrency - len(in_flight)
                    # Claim in batches (half the threads or more): one claim per delivery would
                    # make the claims, not the receivers, the pace.
                    if free >= max(1, self._concurrency // 2):
                        claimed = self._deliver.claim(free)
                        in_flight |= {pool.submit(self._attempt, one) for one in claimed}
                        found = found or len(claimed) == free
                except StoreUnavailable as lost:
                    log.warning(
                        "webhook worker: database unavailable", extra={"detail": lost.detail}
                    )
                    self.stopping.wait(self._poll_interval)
                    continue
                except Exception:  # a bug or a refused statement: logged, and the loop goes on
                    log.exception("webhook worker: fan-out or claim failed")
                    self.stopping.wait(self._poll_interval)
                    continue
                if found:
                    continue
                if in_flight:
                    wait(in_flight, timeout=self._poll_interval, return_when=FIRST_COMPLETED)
                else:
                    self.stopping.wait(self._poll_interval)
            log.info("webhook worker stopping", extra={"in_flight": len(in_flight)})
            wait(in_flight)
        log.info("webhook worker stopped")

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
