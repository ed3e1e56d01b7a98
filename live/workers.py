"""Many files over many workers: local processes (`--jobs N`) or Ray actors (`--ray [ADDRESS]`).

Why: one engine on one core is the bottleneck for a corpus (tens of hours of negatives, thousands
of eval files). The unit of work is one file. Each worker loads the models once and keeps them
(and whatever a task caches, such as an engine) for every file it is given; results come back in
INPUT ORDER whatever order the workers finish in, so what the caller builds from them equals the
serial run. The serial run is the same `Workers.map` in this process (no `--jobs`, no `--ray`).

Rules:
- local processes start with the "spawn" context: forking a process that holds onnxruntime
  sessions (threads, locks) is not safe;
- at most 2 files per worker are in flight or waiting for their turn: memory stays bounded for
  any corpus (results that finish early wait in that buffer, nothing else does);
- a HarkError a file raises in a worker (bad audio) is raised again here, at its place in the
  input order, after every earlier file's result has been handed over;
- a worker that dies, or a file with no result within its time limit, is a WorkerError (exit 1);
- workers ignore SIGINT (a terminal sends it to the whole process group): the driver stops them,
  and a worker whose driver is gone exits by itself.
Ray workers get the model's bytes and card, and each file's bytes (read here, decoded there):
nothing needs a shared file system; compressed audio travels smaller than decoded samples, and the
decoding is spread over the workers too.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import os
import re
import signal
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

from hark.live.errors import HarkError

R = TypeVar("R")
IN_FLIGHT_PER_WORKER = 2
START_LIMIT_S = 120.0  # a worker's start (models loaded) plus one file's slack
SLOWEST_RATE = 20.0  # a file may take 20 x its duration before its worker counts as hung
RAY_MISSING = "--ray needs the cluster extra: pip install 'hark[cluster]'"


class WorkerError(HarkError):
    """A worker died, hung, or could not be started: not the input's fault."""

    exit_code = 1


class Stopped(Exception):
    """The caller's stop event was set (a signal) while results were awaited."""


@dataclass(frozen=True)
class PoolOptions:
    """Where files go: this process (jobs None, no ray), N local processes, or Ray workers.

    address: a Ray cluster to connect to ("HEAD:6379", "auto", "ray://HOST:10001"); None with
    ray=True starts a local in-process Ray cluster with `jobs` CPUs (default: all).
    """

    jobs: int | None = None
    ray: bool = False
    address: str | None = None

    @property
    def parallel(self) -> bool:
        """Whether the files leave this process."""
        return self.jobs is not None or self.ray


def add_pool_args(p: Any) -> None:
    """--jobs N and --ray [ADDRESS] on an argparse parser (replay, eval)."""
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="spread the files over N worker processes (each loads the models once); "
                   "output in input order, identical to the serial run; with --ray: N Ray "
                   "workers")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="spread the files over Ray workers (pip install 'hark[cluster]'): no "
                   "ADDRESS starts a local Ray with --jobs CPUs (default all); HEAD:6379 joins "
                   "the cluster started there with `ray start --head`")


def pool_options(args: Any) -> PoolOptions:
    """PoolOptions from --jobs / --ray; a HarkError (exit 2) for a jobs count below 1."""
    jobs = getattr(args, "jobs", None)
    if jobs is not None and jobs < 1:
        raise HarkError(f"--jobs must be at least 1, not {jobs}")
    ray = getattr(args, "ray", None)
    return PoolOptions(jobs=jobs, ray=ray is not None, address=ray or None)


class WorkItem(Protocol):
    """One unit of work: `path` names it in messages, `shipped()` is what travels to Ray."""

    @property
    def path(self) -> Any: ...

    @property
    def limit_s(self) -> float: ...

    def shipped(self) -> Any: ...


@dataclass(frozen=True)
class AudioFile:
    """One input file as a worker opens it: its path and, when it travels, its bytes."""

    path: Path
    duration_s: float | None = None
    data: bytes | None = None

    def source(self, sample_rate: int, **kw: Any) -> Any:
        """A FileSource reading this file (from its bytes when it has them)."""
        from hark.live.sources import FileSource

        return FileSource(self.path, sample_rate, data=self.data, **kw)

    def shipped(self) -> AudioFile:
        """The file with its contents, for a worker that may not see this file system."""
        from hark.live.sources import AudioError

        try:
            return replace(self, data=self.path.read_bytes())
        except OSError as e:
            raise AudioError(f"{self.path}: cannot read ({e.strerror})") from None

    @property
    def limit_s(self) -> float:
        """How long a worker may take for this file before it counts as hung."""
        return START_LIMIT_S + SLOWEST_RATE * (self.duration_s or 60.0)


@dataclass(frozen=True)
class ModelSpec:
    """What a worker needs to load one model as the driver holds it (its card may be edited)."""

    path: str
    card: Any  # ModelCard
    threads: int
    onnx: bytes | None = None  # the graph itself, for workers on other machines

    @classmethod
    def of(cls, model: Any, ship: bool = False) -> ModelSpec:
        """The spec of a loaded OnnxModel; ship: carry the .onnx bytes (Ray)."""
        threads = int(model.session.get_session_options().intra_op_num_threads or 1)
        data = Path(model.path).read_bytes() if ship else None
        return cls(str(model.path), model.card, threads, data)

    def load(self, folder: Path | None) -> Any:
        """The OnnxModel (from the shipped bytes, written into `folder`, when there are any)."""
        from hark.live.model import OnnxModel, RuntimeOptions

        path = Path(self.path)
        if self.onnx is not None and folder is not None:
            path = folder / f"{len(list(folder.iterdir()))}-{path.name}"
            path.write_bytes(self.onnx)
        return OnnxModel.load(path, card=self.card, options=RuntimeOptions(threads=self.threads))


class WorkerState:
    """What one worker keeps from file to file: its models, and what its tasks cache."""

    def __init__(self, models: Sequence[Any]) -> None:
        self.models = list(models)
        self._kept: dict[Any, Any] = {}

    def keep(self, key: Any, make: Callable[[], R]) -> R:
        """The object stored under `key`, made on first use (an engine per worker, not per file)."""
        if key not in self._kept:
            self._kept[key] = make()
        return self._kept[key]


Task = Callable[[WorkerState, Any], Any]


def _apply(state: WorkerState, task: Task, item: WorkItem) -> tuple[bool, Any]:
    """Run one task; a HarkError (bad input) comes back as a value, to be raised in order."""
    try:
        return True, task(state, item)
    except HarkError as e:
        return False, e


# ---- local worker processes ----------------------------------------------------------------------
_LOCAL: dict[str, WorkerState] = {}  # the one state of a local worker process


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:  # the driver is gone (killed): nothing will collect our work
            os._exit(1)


def _start_local(specs: Sequence[ModelSpec], parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    _LOCAL["state"] = WorkerState([s.load(None) for s in specs])


def _run_local(task: Task, item: WorkItem) -> tuple[bool, Any]:
    return _apply(_LOCAL["state"], task, item)


# ---- Ray actors ----------------------------------------------------------------------------------
class RayWorker:
    """One Ray actor: the models loaded once from their shipped bytes, then file after file."""

    def __init__(self, specs: Sequence[ModelSpec]) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self._dir = tempfile.TemporaryDirectory(prefix="hark-worker-")
        self.state = WorkerState([s.load(Path(self._dir.name)) for s in specs])

    def run(self, task: Task, item: WorkItem) -> tuple[bool, Any]:
        return _apply(self.state, task, item)


def import_ray() -> Any:
    """The ray module, or the one-line error that says how to install it."""
    try:
        import ray
    except ImportError:
        raise HarkError(RAY_MISSING) from None
    return ray


def _quiet_ray_errors(ray: Any) -> None:
    """Keep Ray's raylet error notes off stdout, where hark's event lines go.

    Ray's driver prints cluster errors ("A worker died or was killed ...") to sys.stdout from a
    thread; hark reports the same failure in its own one line (WorkerError), and Ray keeps its
    logs in its session folder (/tmp/ray/session_latest/logs). Private API: if it moved, nothing
    is changed.
    """
    worker = getattr(getattr(ray, "_private", None), "worker", None)
    if worker is not None and callable(getattr(worker, "print_to_stdstream", None)):
        worker.print_to_stdstream = lambda data, ignore_prefix=False: None


def _check_reachable(address: str) -> None:
    """A HOST:PORT that does not answer is one line now, not Ray's endless retries."""
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address or not host:
        return  # "auto", "ray://...": Ray's own resolution
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=5.0):
            pass
    except OSError as e:
        raise WorkerError(f"--ray {address}: no Ray head answers there ({e.strerror or e}); "
                          "start one with `ray start --head`") from None


class Workers:
    """Runs tasks over files on this process, local processes or Ray, results in input order.

    models: the driver's loaded models; tasks find them in `state.models` at `slot(model)`.
    stop: an event the driver's signal handler sets; map() then raises Stopped.
    """

    def __init__(self, models: Sequence[Any], options: PoolOptions | None = None,
                 stop: threading.Event | None = None) -> None:
        self.options = options or PoolOptions()
        self.models = list(models)
        self.stop = stop
        self._pool: cf.ProcessPoolExecutor | None = None
        self._ray: Any = None
        self._actors: list[Any] = []
        self._owns_ray = False
        if not self.options.parallel:
            self._state = WorkerState(self.models)
        elif self.options.ray:
            self._start_ray()
        else:
            import multiprocessing

            specs = [ModelSpec.of(m) for m in self.models]
            self._pool = cf.ProcessPoolExecutor(
                max_workers=self.options.jobs, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_local, initargs=(specs, os.getpid()))

    @property
    def size(self) -> int:
        """How many workers run at once."""
        if self._actors:
            return len(self._actors)
        return self.options.jobs or 1

    def slot(self, model: Any) -> int:
        """Where a task finds `model` in its worker's state.models."""
        for i, m in enumerate(self.models):
            if m is model:
                return i
        raise ValueError(f"model {getattr(model, 'name', model)!r} was not given to the workers")

    def _start_ray(self) -> None:
        """Ray started (or joined) and one actor per worker; a Ctrl-C meanwhile is not lost.

        Ray defers a SIGINT that comes while it starts and may swallow it: with Python's own
        handler in place, it is caught here and raised as KeyboardInterrupt once Ray is up.
        """
        got: list[int] = []
        own = (threading.current_thread() is threading.main_thread()
               and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
        if own:
            signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
        try:
            self._start_ray_workers()
        finally:
            if own:
                signal.signal(signal.SIGINT, signal.default_int_handler)
        if got:
            raise KeyboardInterrupt

    def _start_ray_workers(self) -> None:
        if not self.options.address:
            # a local Ray listens on loopback only (by default it binds the host's address)
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        ray = import_ray()
        self._ray = ray
        if self.options.address:
            _check_reachable(self.options.address)
        quiet = {"logging_level": logging.ERROR, "log_to_driver": False,
                 "include_dashboard": False}
        if not ray.is_initialized():
            try:
                if self.options.address:
                    ray.init(address=self.options.address, **quiet)
                else:  # "local": a new instance, never a `ray start` one found on this machine
                    ray.init(address="local", num_cpus=self.options.jobs, **quiet)
            except (ConnectionError, RuntimeError, ValueError) as e:
                first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                where = self.options.address or "a local Ray"
                raise WorkerError(f"--ray: cannot start or reach {where}: {first}") from None
            self._owns_ray = True
        _quiet_ray_errors(ray)
        n = self.options.jobs or max(1, int(ray.cluster_resources().get("CPU", 1)))
        specs = [ModelSpec.of(m, ship=True) for m in self.models]
        actor = ray.remote(num_cpus=1, max_restarts=0)(RayWorker)
        self._actors = [actor.remote(specs) for _ in range(n)]

    def map(self, task: Task, items: Iterable[WorkItem]) -> Iterator[Any]:
        """task(state, item) for every item, yielded in input order.

        A HarkError of an item is raised at its place; a dead or hung worker is a WorkerError.
        """
        if self._pool is not None:
            return self._map_local(task, items)
        if self._actors:
            return self._map_ray(task, items)
        return (task(self._state, item) for item in items)

    def _check_stop(self) -> None:
        if self.stop is not None and self.stop.is_set():
            raise Stopped()

    def _map_local(self, task: Task, items: Iterable[WorkItem]) -> Iterator[Any]:
        assert self._pool is not None
        window = IN_FLIGHT_PER_WORKER * self.size
        todo = iter(items)
        pending: deque[tuple[WorkItem, cf.Future[tuple[bool, Any]]]] = deque()

        def fill() -> None:
            assert self._pool is not None
            for item in todo:
                pending.append((item, self._pool.submit(_run_local, task, item)))
                if len(pending) >= window:
                    return

        fill()
        try:
            while pending:
                item, fut = pending[0]
                # the oldest pending file is running (work is taken first in, first out)
                deadline = time.monotonic() + item.limit_s
                while not fut.done():
                    self._check_stop()
                    if time.monotonic() > deadline:
                        raise WorkerError(f"{item.path}: no result after {item.limit_s:.0f} s: "
                                          "its worker hangs")
                    cf.wait([fut], timeout=0.2)
                pending.popleft()
                try:
                    ok, value = fut.result()
                except cf.process.BrokenProcessPool:
                    raise WorkerError(f"a worker process died (killed?) before {item.path} was "
                                      "done") from None
                fill()
                if not ok:
                    raise value
                yield value
        finally:
            for _, f in pending:
                f.cancel()

    def _map_ray(self, task: Task, items: Iterable[WorkItem]) -> Iterator[Any]:
        ray = self._ray
        window = IN_FLIGHT_PER_WORKER * self.size
        todo = enumerate(items)
        free = deque(self._actors)
        running: dict[Any, tuple[int, WorkItem, Any, float]] = {}
        done: dict[int, tuple[WorkItem, tuple[bool, Any]]] = {}
        sent = served = 0
        exhausted = False
        while True:
            while free and not exhausted and sent - served < window:
                nxt = next(todo, None)
                if nxt is None:
                    exhausted = True
                    break
                index, item = nxt
                actor = free.popleft()
                ref = actor.run.remote(task, item.shipped())
                running[ref] = (index, item, actor, time.monotonic())
                sent += 1
            while served in done:
                _, (ok, value) = done.pop(served)
                served += 1
                if not ok:
                    raise value
                yield value
            if exhausted and not running and not done:
                return
            self._check_stop()
            ready, _ = ray.wait(list(running), num_returns=1, timeout=0.2)
            for ref in ready:
                index, item, actor, _ = running.pop(ref)
                try:
                    done[index] = (item, ray.get(ref))
                except ray.exceptions.RayError as e:
                    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()  # Ray's colours
                    first = (text.splitlines() or [type(e).__name__])[0].rstrip(".")
                    raise WorkerError(f"a Ray worker failed on {item.path}: {first}") from None
                free.append(actor)
            now = time.monotonic()
            for _, item, _, started in running.values():
                if now - started > item.limit_s:
                    raise WorkerError(f"{item.path}: no result after {item.limit_s:.0f} s: its "
                                      "Ray worker hangs")

    def close(self, abort: bool = False) -> None:
        """Let the workers go; abort: stop the ones still running now (an error, a signal)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            if abort:
                procs = list((getattr(pool, "_processes", None) or {}).values())
                for p in procs:
                    p.terminate()
                pool.shutdown(wait=False, cancel_futures=True)
                for p in procs:
                    p.join(timeout=5)
            else:
                pool.shutdown(wait=True)
        if self._ray is not None:
            for a in self._actors:
                self._ray.kill(a)
            self._actors = []
            if self._owns_ray:
                self._ray.shutdown()
            self._ray = None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close(abort=exc_type is not None)
