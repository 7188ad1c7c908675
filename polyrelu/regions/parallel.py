"""Parallel and distributed runs: worker processes (or a Dask cluster) do the work.

The walk (:func:`enumerate_parallel`): this process keeps the walk's bookkeeping
(the visited patterns, the queue, the edges, the checkpoint); workers receive
batches of queued patterns and return each region with its facets and the facet
crossings. Every region is built exactly once, so the result is the single-process
walk's, region for region and edge for edge (regions are numbered in the order they
are completed).

The count (:func:`count_parallel`): the first layers are split here into work units
(batches of pieces, :func:`polyrelu.regions.splitting.work_units`), which the workers
split to the end and count; the sum is the single-process count.
"""

import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager

from ..deadline import Deadline
from ..errors import PolyreluError, TimeLimitError
from ..geometry.domain import check_input_dimension
from ..geometry.lp import LPSolver
from ..options import Options
from ..progress import progress_bar
from .splitting import Splitter, count_units, work_units
from .walk import Walk, open_checkpoint

__all__ = ["enumerate_parallel", "count_parallel", "process_pool"]


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


def _on_dask(walk, scheduler, checkpoint, progress, keep):
    client = _dask_client(scheduler)
    try:
        workers = max(len(client.scheduler_info()["workers"]), 1)
        return walk.run(progress, checkpoint, client.get_executor(pure=False), workers, keep)
    finally:
        if client is not scheduler:
            client.close()


def count_parallel(network, domain, *, jobs=2, scheduler=None, options=None, progress=False,
                   chunk=1024, deadline=None):
    """Number of regions (as :func:`polyrelu.count_regions`) with ``jobs`` worker
    processes, or on a Dask cluster (``scheduler``: an address or a client).

    Returns ``(count, stats)`` with ``stats`` holding ``lps``, ``seconds`` and ``units``
    (the work units dealt to the workers, four per worker). ``deadline`` (a
    :class:`polyrelu.deadline.Deadline`) is checked between units; the workers are
    killed when it passes.

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
    deadline = deadline or Deadline(None)
    start = time.perf_counter()
    solver = LPSolver(options)
    splitter = Splitter(network, domain, options, solver)
    client = _dask_client(scheduler) if scheduler is not None else None
    workers = max(len(client.scheduler_info()["workers"]), 1) if client else jobs
    units = work_units(splitter, 4 * workers, chunk=chunk)
    bar = progress_bar(progress, "splitting")
    count, lps = 0, solver.count
    try:
        with client.get_executor(pure=False) if client else process_pool(jobs) as executor:
            futures = [executor.submit(count_units, network, domain, options, [unit],
                                       chunk=chunk) for unit in units]
            for future in futures:
                found, unit_lps = future.result(timeout=deadline.wait())
                count, lps = count + found, lps + unit_lps
                bar.update(found)
    except BrokenProcessPool as err:
        raise PolyreluError(f"a worker process died ({err})") from err
    except FutureTimeout as err:
        raise TimeLimitError(f"counting: time limit of {deadline.seconds:g} s reached",
                             {"regions_so_far": count}) from err
    finally:
        bar.close()
        if client is not None and client is not scheduler:
            client.close()
    return count, {"lps": lps, "seconds": time.perf_counter() - start, "units": len(units)}


def _connect(client_class, address):
    """A Dask client of the scheduler at ``address``, or a PolyreluError naming it."""
    try:
        return client_class(address, timeout=10)
    except (OSError, TimeoutError, ValueError, TypeError) as err:
        raise PolyreluError(f"cannot reach the Dask scheduler {address!r}: "
                            f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") \
            from err
