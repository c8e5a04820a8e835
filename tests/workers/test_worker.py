"""The generic worker: signals in order, results, errors, cancellation through the token."""

from __future__ import annotations

import threading
import time

import pytest

from tl_desktop.core.errors import DataError
from tl_desktop.core.events import Cancelled, Notice, Progress
from tl_desktop.workers import Failure, Worker


def _count(n, *, callback, cancel, delay=0.0):
    seen_thread = threading.current_thread()
    for i in range(n):
        cancel.raise_if_cancelled()
        callback(Progress("count", i + 1, n))
        time.sleep(delay)
    return {"n": n, "thread": seen_thread}


def test_events_arrive_in_gui_thread_and_result_after_thread_end(qtbot):
    worker = Worker(_count, 5)
    events, threads = [], []
    worker.progressed.connect(lambda e: (events.append(e), threads.append(threading.current_thread())))
    with qtbot.waitSignal(worker.finished, timeout=5000) as blocker:
        worker.start()
    result = blocker.args[0]
    assert [e.done for e in events] == [1, 2, 3, 4, 5]
    assert all(t is threading.main_thread() for t in threads)
    assert result["n"] == 5 and result["thread"] is not threading.main_thread()
    assert not worker.is_running()


def test_stop_sets_token_and_emits_aborted(qtbot):
    worker = Worker(_count, 10_000, delay=0.001)
    ended = []
    worker.finished.connect(lambda _r: ended.append("finished"))
    worker.ended.connect(lambda: ended.append("ended"))
    seen = []
    worker.progressed.connect(seen.append)  # connected once, before the thread emits: waitSignal(progressed)
    worker.start()                          # would disconnect while the thread emits 1,000 events a second
    qtbot.waitUntil(lambda: bool(seen), timeout=5000)
    with qtbot.waitSignal(worker.aborted, timeout=5000):
        worker.stop()
    assert worker.token.cancelled
    qtbot.waitUntil(lambda: "ended" in ended)
    assert "finished" not in ended


def test_exception_becomes_one_line_and_details(qtbot):
    def fail(*, callback, cancel):
        callback(Notice("batch size halved after running out of GPU memory"))
        raise ValueError("the CSV has no 'label' column\nsecond line")

    worker = Worker(fail)
    notices = []
    worker.progressed.connect(notices.append)
    with qtbot.waitSignal(worker.errored, timeout=5000) as blocker:
        worker.start()
    (failure,) = blocker.args
    assert failure.message == "the CSV has no 'label' column"
    assert "Traceback" in failure.details and "ValueError" in failure.details
    assert isinstance(notices[0], Notice)


def test_a_raised_error_arrives_as_the_same_object_with_its_traceback_text(qtbot):
    raised = []

    def fail(*, callback, cancel):
        try:
            {}["label"]
        except KeyError as exc:
            raised.append(DataError("the CSV has no 'label' column"))
            raise raised[0] from exc

    worker = Worker(fail)
    with qtbot.waitSignal(worker.errored, timeout=5000) as blocker:
        worker.start()
    (failure,) = blocker.args
    assert isinstance(failure, Failure) and failure.error is raised[0]
    assert type(failure.error) is DataError and str(failure.error) == "the CSV has no 'label' column"
    assert failure.message == "the CSV has no 'label' column"
    assert "in fail" in failure.details and "DataError: the CSV has no 'label' column" in failure.details
    assert "KeyError" in failure.details  # the chained cause is part of the text
    assert failure.error.__traceback__ is None and failure.error.__cause__.__traceback__ is None  # frames released


def test_an_error_without_text_is_named_by_its_type(qtbot):
    def fail(*, callback, cancel):
        raise MemoryError

    worker = Worker(fail)
    with qtbot.waitSignal(worker.errored, timeout=5000) as blocker:
        worker.start()
    assert blocker.args[0].message == "MemoryError"


def test_cancelled_raised_directly_is_aborted(qtbot):
    def cancelled(*, callback, cancel):
        raise Cancelled("cancelled by the user")

    worker = Worker(cancelled)
    with qtbot.waitSignal(worker.aborted, timeout=5000):
        worker.start()


def test_worker_runs_once(qtbot):
    worker = Worker(_count, 1)
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
    with pytest.raises(RuntimeError):
        worker.start()
