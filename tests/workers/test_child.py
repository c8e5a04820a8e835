"""Training in a child process behaves as in the worker thread: events, cancel, typed errors, log lines; and
per-batch progress reaches the window at most 10 times a second."""

from __future__ import annotations

import inspect
import logging
import os
import pickle

import pytest

from tl_desktop.core import errors
from tl_desktop.core.errors import DataError, RunIntegrityError, TrainingError
from tl_desktop.core.events import BatchEnded, Cancelled, CancelToken, EpochEnded, Progress
from tl_desktop.workers import Failure, Worker, tasks
from tl_desktop.workers.child import RemoteTraceback, run_in_child

TARGETS = "tests.workers.child_targets"


def test_events_arrive_in_order_and_the_result_comes_from_another_process():
    events: list = []
    result = run_in_child(f"{TARGETS}:count", 5, callback=events.append, cancel=CancelToken())
    assert [e.done for e in events] == [1, 2, 3, 4, 5] and all(isinstance(e, Progress) for e in events)
    assert result["n"] == 5 and result["pid"] != os.getpid()


def test_a_callback_that_cancels_stops_the_child_at_its_next_check():
    """The child waits for each callback, so cancelling in one stops it exactly there, as in-thread."""
    token, events = CancelToken(), []

    def relay(event) -> None:
        events.append(event)
        if event.done == 3:
            token.cancel()

    with pytest.raises(Cancelled):
        run_in_child(f"{TARGETS}:count", 1000, callback=relay, cancel=token)
    assert [e.done for e in events] == [1, 2, 3]


def test_cancelling_the_token_from_another_thread_stops_a_waiting_child():
    token = CancelToken()
    with pytest.raises(Cancelled):
        run_in_child(f"{TARGETS}:until_cancelled", callback=lambda event: token.cancel(), cancel=token)


def test_a_user_facing_error_comes_back_as_the_same_type_with_its_attributes():
    with pytest.raises(RunIntegrityError) as caught:
        run_in_child(f"{TARGETS}:refuse_changed_images", callback=lambda e: None, cancel=CancelToken())
    assert str(caught.value) == "2 images changed; run with --allow-changed"
    assert caught.value.summary == "2 images changed" and caught.value.problems == ("a.png", "b.png")
    assert isinstance(caught.value.__cause__, RemoteTraceback)
    assert "refuse_changed_images" in caught.value.__cause__.text  # the child's own frames


def test_the_worker_reports_a_child_error_with_the_childs_traceback(qtbot):
    worker = Worker(run_in_child, f"{TARGETS}:refuse_folder")
    failures: list[Failure] = []
    worker.errored.connect(failures.append)
    with qtbot.waitSignal(worker.ended, timeout=60_000):
        worker.start()
    (failure,) = failures
    assert type(failure.error) is DataError
    assert failure.message == "/no/such/folder does not exist: choose the folder of your images"
    assert "child_targets.py" in failure.details and "in refuse_folder" in failure.details
    assert failure.details.rstrip().endswith("DataError: /no/such/folder does not exist: choose the folder of "
                                             "your images")
    assert "RemoteTraceback" not in failure.details


def test_a_child_that_dies_is_a_training_error_naming_its_exit_code():
    with pytest.raises(TrainingError, match="exit code 7"):
        run_in_child(f"{TARGETS}:die", 7, callback=lambda e: None, cancel=CancelToken())


def test_the_childs_log_lines_reach_this_process(caplog):
    with caplog.at_level(logging.INFO):
        run_in_child(f"{TARGETS}:count", 2, callback=lambda e: None, cancel=CancelToken())
    assert any(r.name == "tests.child" and r.getMessage() == "counted to 2" for r in caplog.records)


@pytest.mark.parametrize("cls", [c for c in vars(errors).values()
                                 if inspect.isclass(c) and issubclass(c, errors.UserFacingError)])
def test_every_user_facing_error_survives_the_trip_between_processes(cls):
    error = cls("one line the user can act on")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls and str(copy) == str(error) and vars(copy) == vars(error)


# --- batches at most 10 times a second ---------------------------------------------------------------

def _batch(step: int) -> BatchEnded:
    return BatchEnded(0, step, step + 1, 1.0 / (step + 1), 1e-3, 100.0, 5.0)


def _epoch() -> EpochEnded:
    return EpochEnded(1, 0.5, 0.8, 0.6, 0.7, 1e-3, 100.0, 0.0, 1, True, 1.0)


def test_a_flood_of_batches_is_thinned_and_the_last_batch_comes_before_the_epoch(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(tasks.time, "monotonic", lambda: clock[0])
    seen: list = []
    relay = tasks.Throttled(seen.append, interval_s=0.1)
    for step in range(100):  # 100 batches in 50 ms
        relay(_batch(step))
        clock[0] += 0.0005
    relay(_epoch())
    assert [type(e).__name__ for e in seen] == ["BatchEnded", "BatchEnded", "EpochEnded"]
    assert [e.step for e in seen[:2]] == [0, 99]  # the first at once, the last one before the epoch's end


def test_a_held_batch_is_passed_on_once_the_interval_has_passed(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(tasks.time, "monotonic", lambda: clock[0])
    seen: list = []
    relay = tasks.Throttled(seen.append, interval_s=0.1)
    relay(_batch(0))
    relay(_batch(1))
    relay.tick()
    assert [e.step for e in seen] == [0]  # too soon
    clock[0] += 0.15
    relay.tick()
    assert [e.step for e in seen] == [0, 1]
    relay.tick()
    assert len(seen) == 2  # nothing held, nothing sent twice


def test_a_prepared_spare_runs_the_next_job_and_another_is_prepared_after_it(qtbot, monkeypatch):
    from tl_desktop.workers import child

    monkeypatch.setattr(child, "_spare", None)
    monkeypatch.setattr(child, "_spare_preload", None)
    child.prepare_spare((TARGETS,))
    spare = child._spare
    qtbot.waitUntil(child.spare_ready, timeout=60_000)
    result = run_in_child(f"{TARGETS}:count", 1, callback=lambda e: None, cancel=CancelToken())
    assert result["pid"] == spare.process.pid  # no process started while the user waited
    assert child._spare is not None and child._spare is not spare  # the next one is on its way
    child._spare.close(5)
