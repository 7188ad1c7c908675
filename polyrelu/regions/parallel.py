"""Parallel and distributed runs: worker processes (or a Dask cluster) do the work.

The walk (:func:`enumerate_parallel`): this process keeps the walk's bookkeeping
(the visited patterns, the queue, the edges, the checkpoint); workers receive
batches of queued patterns and return each region with its facets and the facet
crossings. Every region is built exactly once, so the result is the single-process
walk's, region for region and edge for edge (regions are numbered in the order they
are completed).

The count (:func:`count_parallel`): tasks take open batches of pieces
(:class:`polyrelu.regions.splitting.Batch`), split them for a few seconds and return the
count of the finished pieces and the batches still open, which go back to be dealt out
again; the sum is the single-process count. Its state (count and open batches) is what
a count checkpoint stores.
"""

import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager

import numpy as np

from ..deadline import Deadline
from ..errors import PolyreluError, TimeLimitError
from ..geometry.domain import check_input_dimension
from ..geometry.lp import LPSolver
from ..options import Options
from ..progress import progress_bar
from .checkpoint import CountCheckpoint
from .splitting import Splitter, count_batches
from .walk import Walk, open_checkpoint

__all__ = ["enumerate_parallel", "count_parallel", "process_pool", "dask_executor",
           "CONNECT_SECONDS"]


def enumerate_parallel(network, domain, *, jobs=2, scheduler=None, options=None,
                       checkpoint=None, progress=False, deadline=None, keep=True):
    """Enumerate regions with ``jobs`` worker processes, or on a Dask cluster.

    Parameters
    ----------
    network, domain, options, checkpoint, progress, deadline, keep
        As for :func:`polyrelu.enumerate_regions` (on expiry the worker processes are
        killed).
    jobs : int
        Worker processes (ignored with ``scheduler``: the cluster's workers count).
    scheduler : str or dask.distributed.Client, optional
        Address of a Dask scheduler (``"tcp://host:8786"``) or a client.

    Returns
    -------
    RegionComplex or StreamedComplex
    """
    check_input_dimension(network, domain)
    options = options or Options()
    walk = Walk(network, domain, options, deadline)
    checkpoint = open_checkpoint(checkpoint, network, domain, options, keep)
    if scheduler is not None:
        return _on_dask(walk, scheduler, checkpoint, progress, keep)
    if jobs < 1:
        raise PolyreluError(f"jobs must be at least 1, got {jobs}")
    try:
        with process_pool(jobs) as executor:
            return walk.run(progress, checkpoint, executor, jobs, keep)
    except BrokenProcessPool as err:
        resume = ("; the regions found so far are in the checkpoint: run again with the same "
                  "checkpoint to resume" if checkpoint else "")
        raise PolyreluError(f"a worker process died ({err}){resume}") from err


@contextmanager
def process_pool(jobs, **kwargs):
    """A ``ProcessPoolExecutor`` whose worker processes are killed (not waited for) when
    the block ends with an exception (a time limit, Ctrl-C, an error).

    Parameters
    ----------
    jobs : int
        Worker processes.
    **kwargs
        Passed to ``ProcessPoolExecutor`` (``mp_context``, ``initializer``, ...).

    Yields
    ------
    ProcessPoolExecutor
    """
    executor = ProcessPoolExecutor(max_workers=jobs, **kwargs)
    try:
        yield executor
    except BaseException:
        processes = list((getattr(executor, "_processes", None) or {}).values())
        for process in processes:
            process.kill()
        for process in processes:
            process.join(timeout=5)
        calls = getattr(executor, "_call_queue", None)
        if calls is not None:  # its feeder thread may block on the dead workers' pipe:
            calls.cancel_join_thread()  # do not wait for it at exit
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)


def _dask_client(scheduler):
    """A Dask client: ``scheduler`` itself, or a new client of that address (a
    PolyreluError when dask is missing or the scheduler cannot be reached)."""
    try:
        from dask.distributed import Client
    except ImportError as err:
        raise PolyreluError("--scheduler needs dask.distributed: pip install "
                            "'polyrelu[dask]'") from err
    return scheduler if isinstance(scheduler, Client) else _connect(Client, scheduler)


@contextmanager
def dask_executor(scheduler):
    """``(executor, workers)`` of a Dask cluster: a ``concurrent.futures`` executor whose
    tasks run on the cluster and the number of its workers (at least 1). ``scheduler`` is
    a ``dask.distributed.Client`` (left open) or a scheduler's address (a client is made,
    and closed on leaving the block); a PolyreluError names a missing dask or an
    unreachable scheduler."""
    client = _dask_client(scheduler)
    try:
        yield client.get_executor(pure=False), max(len(client.scheduler_info()["workers"]), 1)
    finally:
        if client is not scheduler:
            client.close()


def _on_dask(walk, scheduler, checkpoint, progress, keep):
    with dask_executor(scheduler) as (executor, workers):
        return walk.run(progress, checkpoint, executor, workers, keep)


def count_parallel(network, domain, *, jobs=1, scheduler=None, options=None, checkpoint=None,
                   progress=False, chunk=1024, deadline=None, task_seconds=2.0,
                   checkpoint_seconds=5.0):
    """Number of regions (as :func:`polyrelu.count_regions`) with ``jobs`` worker
    processes, or on a Dask cluster (``scheduler``: an address or a client), resumable
    from a ``checkpoint`` directory.

    The work is shared out as open batches (:class:`polyrelu.regions.splitting.Batch`):
    a task counts one batch for at most ``task_seconds`` and returns the batches it did
    not finish, which go back on the (last in, first out) list of open batches, dealt
    into more parts while workers would be idle. With ``checkpoint`` (a directory or a
    :class:`CountCheckpoint`) the count so far and the open batches (those of running
    tasks included) are written every ``checkpoint_seconds`` and when the run stops for
    any reason (its time limit, Ctrl-C, an error), and a run with the same checkpoint
    resumes from them to the same total. With ``jobs=1`` and no scheduler the tasks
    run in this process.

    Returns ``(count, stats)`` with ``stats`` holding ``lps``, ``seconds``, ``units``
    (tasks run) and ``resumed_regions``. ``deadline`` (a
    :class:`polyrelu.deadline.Deadline`) stops the run with :class:`TimeLimitError`
    (``partial["regions_so_far"]``); no task runs past it.

    Examples
    --------
    >>> from polyrelu import Network, Domain
    >>> absolute = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    >>> count_parallel(absolute, Domain.box([-1], [1]), jobs=2)[0]
    2
    """
    check_input_dimension(network, domain)
    if scheduler is None and jobs < 1:
        raise PolyreluError(f"jobs must be at least 1, got {jobs}")
    options = options or Options()
    if checkpoint is not None and not isinstance(checkpoint, CountCheckpoint):
        checkpoint = CountCheckpoint(checkpoint, network, domain, options)
    run = _CountRun(network, domain, options, checkpoint, chunk, task_seconds,
                    checkpoint_seconds, deadline or Deadline(None))
    bar = progress_bar(progress, "splitting")
    bar.update(run.count)
    try:
        if scheduler is not None:
            with dask_executor(scheduler) as (executor, workers):
                run.share(executor, workers, bar)
        elif jobs > 1:
            with process_pool(jobs) as executor:
                run.share(executor, jobs, bar)
        else:
            run.inline(bar)
        run.stop_if_unfinished()  # after the pool's end: its tasks stop by the deadline
        # (killing a worker while it sends its open batches back can hang the pool)
    except BrokenProcessPool as err:
        raise PolyreluError(f"a worker process died ({err}){run.resume_hint()}") from err
    finally:
        run.save()
        bar.close()
    return run.count, {"lps": run.lps, "seconds": time.perf_counter() - run.started,
                       "units": run.tasks, "resumed_regions": run.resumed}


class _CountRun:
    """The state of a shared-out count: regions counted, LPs, the open batches (a list
    whose end is done first) and the batches of the running tasks."""

    def __init__(self, network, domain, options, checkpoint, chunk, task_seconds,
                 checkpoint_seconds, deadline):
        self.network, self.domain, self.options = network, domain, options
        self.checkpoint, self.chunk, self.deadline = checkpoint, chunk, deadline
        self.task_seconds, self.checkpoint_seconds = task_seconds, checkpoint_seconds
        self.started = self.saved = time.perf_counter()
        self.saving = 0.0  # seconds the last save took
        stored = checkpoint.load() if checkpoint is not None else None
        if stored is None:
            splitter = Splitter(network, domain, options, LPSolver(options))
            stored = (0, 0, [splitter.root_batch()])
        self.count, self.lps, self.open = stored
        self.resumed, self.running, self.tasks = self.count, {}, 0

    def inline(self, bar):
        """Count in this process, one task of ``checkpoint_seconds`` at a time."""
        while self.open and not self.deadline.expired():
            found, lps, left = count_batches(
                self.network, self.domain, self.options, self.open[::-1], chunk=self.chunk,
                seconds=self.checkpoint_seconds, deadline=self.deadline, progress=bar)
            self.count, self.lps, self.open = self.count + found, self.lps + lps, left[::-1]
            self.tasks += 1
            self.save_when_due()

    def share(self, executor, workers, bar):
        """Count with ``workers`` workers of ``executor`` (the first layers split here until
        there are pieces for them all)."""
        found, lps, left = count_batches(self.network, self.domain, self.options,
                                         self.open[::-1], chunk=self.chunk,
                                         deadline=self.deadline, spread=4 * workers)
        self.count, self.lps, self.open = self.count + found, self.lps + lps, left[::-1]
        bar.update(found)
        while (self.open or self.running) and not self.deadline.expired():
            self.open = _deal(self.open, workers - len(self.running))
            while self.open and len(self.running) < workers:
                batch = self.open.pop()
                seconds = self.task_seconds if len(self.open) >= workers else \
                    self.task_seconds / 8
                seconds = min(seconds, self.deadline.remaining())  # the pool's end waits
                future = executor.submit(count_batches, self.network, self.domain,
                                         self.options, [batch], chunk=self.chunk,
                                         seconds=seconds)
                self.running[future] = batch
                self.tasks += 1
            done, _ = wait(self.running, timeout=min(self.deadline.remaining(),
                                                     self.checkpoint_seconds),
                           return_when=FIRST_COMPLETED)
            for future in done:
                found, lps, left = future.result()
                del self.running[future]
                self.count, self.lps = self.count + found, self.lps + lps
                self.open.extend(reversed(left))
                bar.update(found)
            self.save_when_due()
        self.open.extend(self.running.values())  # stopped early: still to do
        self.running = {}

    def stop_if_unfinished(self):
        """Raise TimeLimitError if batches are still open (the deadline passed)."""
        if self.open:
            raise TimeLimitError(f"counting: time limit of {self.deadline.seconds:g} s "
                                 f"reached{self.resume_hint()}", {"regions_so_far": self.count})

    def save_when_due(self):
        """Save every ``checkpoint_seconds``, or less often when saving is slow (at most a
        tenth of the time goes to it)."""
        if time.perf_counter() - self.saved >= max(self.checkpoint_seconds, 10 * self.saving):
            self.save()

    def save(self):
        """Write the checkpoint (if any): the open batches and those of running tasks."""
        start = time.perf_counter()
        if self.checkpoint is not None:
            self.checkpoint.save(self.count, self.lps,  # in the order of self.open
                                 [batch.compact() for batch in
                                  self.open + list(self.running.values())])
        self.saved = time.perf_counter()
        self.saving = self.saved - start

    def resume_hint(self):
        if self.checkpoint is None:
            return ""
        return (f"; the count so far is in the checkpoint {self.checkpoint.directory}: run "
                "again with the same checkpoint to resume")


def _deal(batches, wanted):
    """``batches`` (a list done from its end) with its largest batches halved until it
    holds at least ``wanted`` or none has two pieces."""
    batches = list(batches)
    while 0 < len(batches) < wanted:
        sizes = [batch.pieces.count for batch in batches]
        largest = int(np.argmax(sizes))
        if sizes[largest] < 2:
            break
        batches[largest:largest + 1] = batches[largest].halves()[::-1]
    return batches


#: Seconds to wait for a Dask scheduler before the run is refused as unreachable.
CONNECT_SECONDS = 10


def _connect(client_class, address):
    """A Dask client of the scheduler at ``address``, or a PolyreluError naming it."""
    try:
        return client_class(address, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError, ValueError, TypeError) as err:
        raise PolyreluError(f"cannot reach the Dask scheduler {address!r}: "
                            f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") \
            from err
