"""Threads of the BLAS library under control.

polyrelu's dense operations are small (a region's constraint rows, a batch of pieces'
bounds): a multi-threaded BLAS spends more time waking and synchronising its threads than
computing, and on a loaded machine its threads contend with polyrelu's own worker
processes. So the command line runs with one BLAS thread unless told otherwise
(``polyrelu --blas-threads N``), and worker processes inherit that limit;
``--jobs`` decides the parallelism.
"""

import contextlib
import os

from threadpoolctl import threadpool_limits

__all__ = ["blas_threads"]

_ENVIRONMENT = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS",
                "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


@contextlib.contextmanager
def blas_threads(count):
    """Limit the BLAS library to ``count`` threads in this process and in worker processes
    started meanwhile (through the environment), restoring both afterwards.

    >>> import numpy as np
    >>> with blas_threads(1):
    ...     float(np.ones((3, 3)) @ np.ones(3) @ np.ones(3))
    9.0
    """
    saved = {name: os.environ.get(name) for name in _ENVIRONMENT}
    os.environ.update({name: str(count) for name in _ENVIRONMENT})
    try:
        with threadpool_limits(limits=count, user_api="blas"):
            yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
