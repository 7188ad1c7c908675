"""Parallel and distributed walks: worker processes (or a Dask cluster) build the regions.

This process keeps the walk's bookkeeping (the visited patterns, the queue, the
edges, the checkpoint); workers receive batches of queued patterns and return
each region with its facets and the facet crossings. Every region is built
exactly once, so the result is the single-process walk's, region for region and
edge for edge (regions are numbered in the order they are completed).
"""

from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager

from ..errors import PolyreluError
from ..geometry.domain import check_input_dimension
from ..options import Options
from .checkpoint import Checkpoint
from .walk import _Walk

__all__ = ["enumerate_parallel", "process_pool"]


def enumerate_parallel(network, domain, *, jobs=2, scheduler=None, options=None,
                       checkpoint=None, progress=False, deadline=None):
    """Enumerate regions with ``jobs`` worker processes, or on a Dask cluster.

    Parameters
    ----------
    network, domain, options, checkpoint, progress, deadline
        As for :func:`polyrelu.enumerate_regions` (on expiry the worker processes are
        killed).
    jobs : int
        Worker processes (ignored with ``scheduler``: the cluster's workers count).
    scheduler : str or dask.distributed.Client, optional
        Address of a Dask scheduler (``"tcp://host:8786"``) or a client.

    Returns
    -------
    RegionComplex
    """
    check_input_dimension(network, domain)
    options = options or Options()
    walk = _Walk(network, domain, options, deadline)
    if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
        checkpoint = Checkpoint(checkpoint, network, domain, options)
    if scheduler is not None:
        return _on_dask(walk, scheduler, checkpoint, progress)
    if jobs < 1:
        raise PolyreluError(f"jobs must be at least 1, got {jobs}")
    try:
        with process_pool(jobs) as executor:
            return walk.run(progress, checkpoint, executor, jobs)
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


def _on_dask(walk, scheduler, checkpoint, progress):
    try:
        from dask.distributed import Client
    except ImportError as err:
        raise PolyreluError("--scheduler needs dask.distributed: pip install "
                            "'polyrelu[dask]'") from err
    client = scheduler if isinstance(scheduler, Client) else _connect(Client, scheduler)
    try:
        workers = max(len(client.scheduler_info()["workers"]), 1)
        return walk.run(progress, checkpoint, client.get_executor(pure=False), workers)
    finally:
        if client is not scheduler:
            client.close()


def _connect(client_class, address):
    """A Dask client of the scheduler at ``address``, or a PolyreluError naming it."""
    try:
        return client_class(address, timeout=10)
    except (OSError, TimeoutError, ValueError, TypeError) as err:
        raise PolyreluError(f"cannot reach the Dask scheduler {address!r}: "
                            f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") \
            from err
