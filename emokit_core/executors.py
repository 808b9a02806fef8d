"""Where fold tasks run.

:class:`LocalExecutor` runs :func:`~emokit_core.folds.run_fold` on this machine.  Tasks whose
model trains with torch on the CPU go to worker processes, each with its share of the cores:
on two cores two single-threaded folds get through more work than one fold on two threads
(a small network's convolutions and LSTM steps scale well short of 2x).  Folds that train
without torch (an SVM: seconds) and folds on a GPU (one device, which two processes would only
share) run here, one after another.  Progress from a worker's training loop reaches this
process's reporter through a queue, labelled with its pipeline and fold.

:class:`RayExecutor` runs the same tasks as Ray tasks, on a local Ray or a cluster; both commit
each fold in this process as it arrives, and a fold's result depends only on the task (its
pipeline, fold and seed), never on where or in which order it ran.
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

    def close(self) -> None:
        """Nothing to release: its worker processes live for one :meth:`run`."""

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


# -- Ray ------------------------------------------------------------------------------------------
def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise EmokitError("the ray executor needs Ray, which is not installed",
                          "pip install 'emokit[ray]' (or use --executor local)") from None
    return ray


def _ray_fold(task: FoldTask, threads: int) -> FoldResult:
    """One fold in a Ray worker, with the threads Ray gave it (as a local worker process has)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(threads):
        if task.device is not None:
            import torch

            torch.set_num_threads(threads)
        return run_fold(task)


class RayExecutor:
    """Fold tasks as Ray tasks: each declares its resources (``cpus_per_fold`` CPUs; and
    ``gpus_per_fold`` of a GPU where its model trains on cuda, a fraction letting several folds
    share one device), Ray places them on the cluster's nodes and retries a task whose worker
    died (``max_retries``); an error raised by the fold itself is not retried.  Results (scores,
    posteriors, the fold's artifacts) come back to this process through Ray's object store and
    ``on_result`` commits each here, as the local executor does, so this process is the only
    writer of the registry.

    ``address``: a running cluster (``ray start --head`` on the head node; ``auto`` finds the one
    on this machine).  Without one, a local Ray is started that listens on 127.0.0.1 only, with no
    dashboard, and is shut down by :meth:`close`.  Workers read the features from the feature
    cache's path, so on several machines that path must be shared (docs/scale-out.md).
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, cpus_per_fold: float = 1.0, gpus_per_fold: float = 1.0,
                 max_retries: int = 3, num_cpus: int | None = None, temp_dir: str | None = None):
        self.address = address
        self.cpus_per_fold = cpus_per_fold
        self.gpus_per_fold = gpus_per_fold
        self.max_retries = max_retries
        self.num_cpus = num_cpus
        self.temp_dir = temp_dir
        self._started = False

    def _connect(self) -> Any:
        ray = _import_ray()
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:
                # a cluster of this machine alone: every address on loopback, no dashboard
                ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False,
                         num_cpus=self.num_cpus or usable_cores(), _temp_dir=self.temp_dir)
                self._started = True
        return ray

    def options(self, task: FoldTask) -> dict[str, Any]:
        """The Ray options of one fold: its resources and retries."""
        gpu = task.device is not None and task.device.startswith("cuda")
        return {"num_cpus": self.cpus_per_fold, "num_gpus": self.gpus_per_fold if gpu else 0,
                "max_retries": self.max_retries, "retry_exceptions": False, "name": task.label}

    def run(self, tasks: Sequence[FoldTask], on_result: OnResult) -> None:
        """Run ``tasks`` on the cluster; ``on_result`` is called here as each finishes.  A failing
        fold raises :class:`FoldError` (or an :class:`EmokitError` when its worker kept dying)
        after the others are cancelled; those that had finished are handed to ``on_result``
        first, so a resumed run need not redo them."""
        if not tasks:
            return
        ray = self._connect()
        fold = ray.remote(_ray_fold)
        threads = max(1, int(self.cpus_per_fold))
        pending = {fold.options(**self.options(t)).remote(t, threads): t for t in tasks}
        failure: BaseException | None = None
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    task = pending.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:  # the fold itself raised
                        failure = failure or _fold_error(task, exc.cause or exc)
                    except ray.exceptions.RayError as exc:  # its worker died more than max_retries times
                        failure = failure or EmokitError(
                            f"{task.label}: its Ray worker died {self.max_retries + 1} times ({type(exc).__name__})",
                            "run the same command again: finished folds are kept and the run resumes")
                    else:
                        on_result(task, result)
                if failure is not None:
                    for ref in pending:
                        ray.cancel(ref, force=True)
                    _drain_ray(ray, pending, on_result)
                    raise failure
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise

    def close(self) -> None:
        """Shut down the local Ray this executor started (a cluster it joined stays up)."""
        if self._started:
            _import_ray().shutdown()
            self._started = False


def _fold_error(task: FoldTask, cause: BaseException) -> FoldError:
    error = FoldError(task)
    error.__cause__ = cause
    return error


def _drain_ray(ray: Any, pending: dict, on_result: OnResult) -> None:
    for ref, task in pending.items():
        try:
            result = ray.get(ref)
        except Exception:  # noqa: S112 - cancelled, or failed too: the first failure is the one raised
            continue
        on_result(task, result)


def make_executor(name: str, workers: int = 1, *, ray_address: str | None = None) -> Any:
    """``local`` (the default: this machine, ``workers`` processes) or ``ray``."""
    if name == "local":
        return LocalExecutor(workers)
    if name == "ray":
        return RayExecutor(ray_address)
    raise EmokitError(f"unknown executor {name!r}", "use --executor local or --executor ray")
