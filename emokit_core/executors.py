"""Where fold tasks run.

:class:`LocalExecutor` runs :func:`~emokit_core.folds.run_fold` on this machine.  Tasks whose
model trains with torch on the CPU go to worker processes, each with its share of the cores:
on two cores two single-threaded folds get through more work than one fold on two threads
(a small network's convolutions and LSTM steps scale well short of 2x).  Folds that train
without torch (an SVM: seconds) and folds on a GPU (one device, which two processes would only
share) run here, one after another.  Progress from a worker's training loop reaches this
process's reporter through a queue, labelled with its pipeline and fold.
"""

from __future__ import annotations

import itertools
import os
import queue as queue_module
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack, contextmanager
from typing import Any, Callable, Iterator, Sequence

from .errors import EmokitError
from .folds import FoldResult, FoldTask, run_fold
from .progress import Reporter, current, reporting

OnResult = Callable[[FoldTask, FoldResult], None]


class FoldError(Exception):
    """A fold task failed; ``task`` says which, ``__cause__`` why."""

    def __init__(self, task: FoldTask):
        super().__init__(task.label)
        self.task = task


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class LocalExecutor:
    """``workers`` processes at most for CPU training folds (1: everything in this process)."""

    name = "local"

    def __init__(self, workers: int = 1):
        self.workers = max(1, int(workers))

    def in_worker(self, task: FoldTask) -> bool:
        return self.workers > 1 and task.device is not None and task.device.split(":")[0] == "cpu"

    def run(self, tasks: Sequence[FoldTask], on_result: OnResult) -> None:
        """Run ``tasks``; ``on_result`` is called here, in this process, as each finishes (so the
        caller commits it).  A failing task raises :class:`FoldError` after the tasks already
        running have finished and been handed to ``on_result``; the others are not started."""
        remote = [t for t in tasks if self.in_worker(t)]
        here = [t for t in tasks if not self.in_worker(t)]
        if len(remote) < 2:  # one heavy fold gains nothing from a process of its own
            here, remote = list(tasks), []
        if not remote:
            for task in here:
                on_result(task, _run_here(task))
            return
        with _WorkerPool(min(self.workers, len(remote))) as pool:
            pending = {pool.submit(task): task for task in remote}
            try:
                for task in here:  # cheap or GPU folds run here meanwhile
                    on_result(task, _run_here(task))
                    pending = _gather_finished(pending, on_result, block=False)
                while pending:
                    pending = _gather_finished(pending, on_result, block=True)
            except (KeyboardInterrupt, BrokenProcessPool, EmokitError):
                pool.stop()
                raise
            except BaseException:
                # Folds already running finish and are kept, so a resumed run need not redo them.
                for future in pending:
                    future.cancel()
                _drain(pending, on_result)
                raise


def _run_here(task: FoldTask) -> FoldResult:
    try:
        return run_fold(task)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        raise FoldError(task) from exc


def _gather_finished(pending: dict, on_result: OnResult, *, block: bool) -> dict:
    done, _ = wait(pending, timeout=None if block else 0, return_when=FIRST_COMPLETED)
    for future in done:
        task = pending[future]
        try:
            result = future.result()
        except BrokenProcessPool as exc:
            in_flight = ", ".join(t.label for t in pending.values())
            raise EmokitError(f"a fold worker process died (killed, or out of memory) with {in_flight} not done",
                              "run the same command again: finished folds are kept and the run resumes; "
                              "--workers 1 trains in this process") from exc
        except BaseException as exc:
            raise FoldError(task) from exc
        on_result(task, result)
    return {f: t for f, t in pending.items() if f not in done}


def _drain(pending: dict, on_result: OnResult) -> None:
    for future, task in pending.items():
        if future.cancelled():
            continue
        try:
            result = future.result()
        except Exception:  # noqa: S112 - the first failure is the one raised; this run is marked interrupted
            continue
        on_result(task, result)


# -- worker processes ---------------------------------------------------------------------------
_events: Any = None  # this worker's queue to the parent's reporter


def _start_worker(events: Any, threads: int) -> None:
    global _events
    _events = events
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    import torch

    torch.set_num_threads(threads)


def _run_in_worker(task: FoldTask) -> FoldResult:
    with reporting(_QueueReporter(_events, task.label)):
        return run_fold(task)


class _QueueReporter(Reporter):
    """A worker's reporter: every event goes to the parent as a tuple; advances at most ~4 a second."""

    _ids = itertools.count()

    def __init__(self, events: Any, label: str):
        self.events = events
        self.label = label

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Any]:
        ident = (os.getpid(), next(self._ids))
        self.events.put(("open", ident, f"{self.label}: {description}", total))
        state = {"n": 0, "total": None, "sent": time.monotonic()}

        def advance(n: int = 1, total: int | None = None) -> None:
            state["n"] += n
            if total is not None:
                state["total"] = total
            if time.monotonic() - state["sent"] >= 0.25:
                self._flush(ident, state)

        try:
            yield advance
        finally:
            self._flush(ident, state)
            self.events.put(("close", ident))

    def _flush(self, ident: Any, state: dict) -> None:
        if state["n"] or state["total"] is not None:
            self.events.put(("advance", ident, state["n"], state["total"]))
        state.update(n=0, total=None, sent=time.monotonic())

    def warn(self, message: str) -> None:
        self.events.put(("warn", f"{self.label}: {message}"))

    def info(self, message: str) -> None:
        self.events.put(("info", f"{self.label}: {message}"))


class _WorkerPool:
    """Spawned worker processes (torch may already run threads here, which a fork would break)
    and a thread that replays their progress events on this process's reporter."""

    def __init__(self, workers: int):
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.events = context.Queue()
        self.reporter = current() or Reporter()
        threads = max(1, usable_cores() // workers)
        self.pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                        initargs=(self.events, threads))
        self.relay = threading.Thread(target=self._replay, name="emokit-fold-progress", daemon=True)

    def __enter__(self) -> "_WorkerPool":
        self.relay.start()
        return self

    def submit(self, task: FoldTask):
        return self.pool.submit(_run_in_worker, task)

    def stop(self) -> None:
        """Stop now: queued folds are dropped and running ones killed (interrupted by the user,
        or a worker died and the pool is broken)."""
        # ProcessPoolExecutor has no public way to stop a running task before Python 3.14.
        processes = list((getattr(self.pool, "_processes", None) or {}).values())
        self.pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()

    def __exit__(self, *exc: Any) -> None:
        try:
            self.pool.shutdown(wait=True, cancel_futures=True)
        finally:
            self.events.put(None)
            self.relay.join(timeout=10)
            self.events.close()

    def _replay(self) -> None:
        open_tasks: dict[Any, tuple[ExitStack, Any]] = {}
        try:
            while True:
                try:
                    event = self.events.get(timeout=1.0)
                except queue_module.Empty:
                    continue
                if event is None:
                    break
                kind = event[0]
                if kind == "open":
                    stack = ExitStack()
                    open_tasks[event[1]] = (stack, stack.enter_context(self.reporter.task(event[2], event[3])))
                elif kind == "advance" and event[1] in open_tasks:
                    open_tasks[event[1]][1](event[2], total=event[3])
                elif kind == "close" and event[1] in open_tasks:
                    open_tasks.pop(event[1])[0].close()
                elif kind == "warn":
                    self.reporter.warn(event[1])
                elif kind == "info":
                    self.reporter.info(event[1])
        finally:
            for stack, _ in open_tasks.values():  # a worker that died left its bars open
                stack.close()
