"""Writing finished evaluations to the study's storage in a background thread.

A journal write (JSON of every parameter's distribution, an fsync) costs about as much as
a tenth of a digits evaluation; done in a second thread it overlaps with the next
evaluation instead of adding to it. Writes keep their order, and `close` waits for all of
them, so only evaluations finished in the last instant before a kill can be lost (a
resume then evaluates them again: none is lost for good, none is recorded twice).
"""

from __future__ import annotations

import queue
import threading
from types import TracebackType
from typing import Any

import optuna

__all__ = ["TrialRecorder"]


class TrialRecorder:
    """`record(**fields)` queues a finished trial for `study.add_trial`; use as a context manager.

    `fields` are `optuna.trial.create_trial`'s arguments: the trial is built in the writer
    thread too, since building it (checking every parameter against its distribution) costs
    about as much as writing it.

    At most `PENDING` trials wait: when the storage writes slower than trials come (an RDB
    server, sqlite with two writers), `record` waits too, so what other runs sharing the study
    can see lags this run's evaluations by a few trials, not by a growing queue.
    """

    PENDING = 2

    def __init__(self, study: optuna.Study) -> None:
        self.study = study
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=self.PENDING)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="trial-recorder", daemon=True)
        self._thread.start()

    def record(self, **fields: Any) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(fields)

    def _drain(self) -> None:
        while (fields := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self.study.add_trial(optuna.trial.create_trial(**fields))
                except Exception as exc:  # noqa: BLE001 - re-raised in the caller's thread
                    self._error = exc

    def close(self) -> None:
        """Wait until every queued trial is written; raise the first write error, if any."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> TrialRecorder:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
