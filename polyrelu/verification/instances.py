"""Run a benchmark's verification instances (a VNN-COMP style csv) and record the results.

The instances file has one line per instance: ``network.onnx,property.vnnlib,timeout``
(paths relative to the csv's folder). Results are appended to the output csv as
each instance finishes, one line ``network,property,result,seconds,check`` followed by
the instance's identity (the resolved paths of both files and their SHA-256), so an
interrupted run loses nothing: rerunning the same command skips the instances
already in the output file, recognised by their identity (two networks of one name in
different folders, or an edited file, are different instances). Each instance's time
limit is honoured (see :func:`polyrelu.verification.search.verify`).

The VNN-COMP benchmark repositories store ``x.onnx.gz`` and ``x.vnnlib.gz`` where their
csv names ``x.onnx`` and ``x.vnnlib``: such a file is read from the gzip (decompressed
up to :data:`polyrelu.network.loaders.MAX_DECOMPRESSED_BYTES`), and it is the gzip file
whose path and hash identify the instance.
"""

import csv
import hashlib
from pathlib import Path

from ..deadline import Deadline
from ..errors import InvalidFileError
from ..network.loaders import MAX_PARAMETERS, gzip_fallback, load_network, read_gzip
from ..regions.parallel import dask_executor, process_pool
from .checked import verify
from .counterexample import check_counterexample_onnx
from .vnnlib import read_vnnlib

__all__ = ["run_instances", "run_instance", "read_instances", "summarize", "instance_identity"]

_FIELDS = ["network", "property", "result", "seconds", "check", "network_path",
           "network_sha256", "property_path", "property_sha256"]
_IDENTITY = _FIELDS[5:]


def read_instances(path):
    """The instances of a benchmark csv as ``(network path, property path, timeout)``
    (a path naming a missing file whose ``.gz`` exists is that ``.gz`` file)."""
    path = Path(path)
    try:
        lines = list(csv.reader(open(path)))
    except OSError as err:
        raise InvalidFileError(f"{path}: cannot read ({err})") from err
    instances = []
    for number, line in enumerate(lines, 1):
        if not line or not "".join(line).strip():
            continue
        if len(line) != 3:
            raise InvalidFileError(f"{path}:{number}: expected network,property,timeout; "
                                   f"got {len(line)} fields")
        try:
            timeout = float(line[2])
        except ValueError as err:
            raise InvalidFileError(f"{path}:{number}: timeout {line[2]!r} is not a number") \
                from err
        instances.append((gzip_fallback(path.parent / line[0].strip()),
                          gzip_fallback(path.parent / line[1].strip()), timeout))
    return instances


def run_instances(instances_csv, output_csv, *, timeout_cap=None, jobs=1, scheduler=None,
                  progress=None):
    """Verify every instance of ``instances_csv``, appending results to ``output_csv``.

    Parameters
    ----------
    instances_csv, output_csv : path
    timeout_cap : float, optional
        Use ``min(instance timeout, timeout_cap)`` seconds per instance.
    jobs : int
        Instances run at once, each in its own worker process (one process each: the
        search's own ``jobs`` stays 1). The rows are written in the csv's order, each
        as soon as it and the rows before it are done, so the results file is the
        same as a serial run's but for the seconds.
    scheduler : str or dask.distributed.Client, optional
        Run the instances on a Dask cluster instead (an address such as
        ``"tcp://host:8786"``, or a client; ``jobs`` is then ignored: the cluster's workers
        count). Rows come in the csv's order as with ``jobs``. Dask runs tasks in worker
        threads, where each search's limit is kept by its own deadline checks (the
        main-thread backstop of :func:`polyrelu.deadline.hard_limit` does not apply).
    progress : callable, optional
        Called with each finished result row (a dict), in the csv's order.

    Returns
    -------
    dict
        Counts per result, ``decided``, ``total_seconds`` and ``max_seconds`` over all
        rows of the output file (earlier runs included).

    Every "violated" result is re-checked with onnxruntime, every "holds" result's
    certificate with :func:`polyrelu.verification.checker.check_certificate`; the ``check``
    column says ``passed`` or why not (a rejected certificate turns "holds" into "unknown").
    """
    output_csv = Path(output_csv)
    done = _finished(output_csv)
    todo = []
    for net_path, prop_path, timeout in read_instances(instances_csv):
        identity = instance_identity(net_path, prop_path)
        if tuple(identity.values()) not in done:
            limit = timeout if timeout_cap is None else min(timeout, timeout_cap)
            todo.append((net_path, prop_path, limit, identity))
    new_file = not output_csv.exists()
    with open(output_csv, "a", newline="") as handle:
        writer = csv.DictWriter(handle, _FIELDS)
        if new_file:
            writer.writeheader()
        for row in _rows(todo, jobs, scheduler):
            writer.writerow(row)
            handle.flush()
            if progress is not None:
                progress(row)
    return summarize(output_csv)


def _rows(todo, jobs, scheduler=None):
    """The result rows of the instances ``todo`` (net, property, limit, identity), in
    order: run here (``jobs == 1``), ``jobs`` at a time in worker processes, or on the
    Dask cluster of ``scheduler``."""
    if scheduler is not None:
        with dask_executor(scheduler) as (executor, _):
            yield from _submitted(executor, todo)
    elif jobs > 1:
        with process_pool(jobs) as executor:
            yield from _submitted(executor, todo)
    else:
        cache = {}
        for net_path, prop_path, limit, identity in todo:
            yield {**run_instance(net_path, prop_path, limit, cache=cache), **identity}


def _submitted(executor, todo):
    """The rows of ``todo`` run by ``executor``, yielded in order as they finish."""
    futures = [executor.submit(_run_in_worker, net_path, prop_path, limit)
               for net_path, prop_path, limit, _ in todo]
    for future, (*_, identity) in zip(futures, todo):
        yield {**future.result(), **identity}


_WORKER_CACHE = {}  # networks loaded by this worker process


def _run_in_worker(net_path, prop_path, limit):
    return run_instance(net_path, prop_path, limit, cache=_WORKER_CACHE)


def summarize(output_csv):
    """Counts, decided instances, total and maximum seconds of a results csv."""
    rows = list(csv.DictReader(open(output_csv)))
    summary = {"instances": len(rows)}
    for result in ("holds", "violated", "timeout", "unknown"):
        summary[result] = sum(row["result"] == result for row in rows)
    summary["decided"] = summary["holds"] + summary["violated"]
    summary["checks_failed"] = sum(row["check"] not in ("passed", "") for row in rows)
    seconds = [float(row["seconds"]) for row in rows]
    summary["total_seconds"] = round(sum(seconds), 2)
    summary["max_seconds"] = round(max(seconds, default=0.0), 2)
    return summary


def instance_identity(net_path, prop_path):
    """An instance's identity: the resolved paths of its network and property files and
    the SHA-256 of their contents.

    Parameters
    ----------
    net_path, prop_path : str or Path

    Returns
    -------
    dict
        ``network_path``, ``network_sha256``, ``property_path``, ``property_sha256``.

    Raises
    ------
    InvalidFileError
        If a file cannot be read.
    """
    identity = {}
    for kind, path in (("network", net_path), ("property", prop_path)):
        path = Path(path)
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as err:
            raise InvalidFileError(f"{path}: cannot read ({err.strerror or err})") from err
        identity[f"{kind}_path"], identity[f"{kind}_sha256"] = str(path.resolve()), digest
    return identity


def _finished(output_csv):
    """Identities of the instances already in the results csv (rows of an older format,
    without identities, are not trusted: they are run again)."""
    if not output_csv.exists():
        return set()
    with open(output_csv, newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != _FIELDS:
            raise InvalidFileError(f"{output_csv}: not a results csv of this polyrelu (columns "
                                   f"{reader.fieldnames}); write to a new file")
        return {tuple(row[k] for k in _IDENTITY) for row in reader}


def run_instance(net_path, prop_path, timeout, *, jobs=1, cache=None,
                 max_parameters=MAX_PARAMETERS):
    """Verify one instance and re-check the answer; returns its results row (a dict with
    network, property, result, seconds of ``verify`` and check). ``cache`` (a dict)
    keeps loaded networks between calls; ``max_parameters`` is the loader's size limit
    (:func:`polyrelu.network.loaders.load_network`)."""
    cache = {} if cache is None else cache
    if net_path not in cache:
        cache[net_path] = load_network(net_path, max_parameters=max_parameters)
    network, prop = cache[net_path], read_vnnlib(prop_path)
    result = verify(network, prop, deadline=Deadline(timeout), jobs=jobs)
    check = ""
    if result.status == "violated":
        check = _onnx_check(net_path, prop, result.counterexample)
    elif result.status == "holds":
        check = "passed"
    elif "certificate_rejected" in result.stats:
        check = f"certificate rejected ({result.stats['certificate_rejected']})"
    return {"network": net_path.name, "property": prop_path.name, "result": result.status,
            "seconds": f"{result.stats['seconds']:.3f}", "check": check}


def _onnx_check(net_path, prop, counterexample):
    """The ``check`` column of a violated instance: the onnxruntime re-check (and the
    exact one)."""
    model = read_gzip(net_path) if net_path.name.endswith(".gz") else net_path
    try:
        passes, _, worst = check_counterexample_onnx(model, prop, counterexample)
    except ImportError:
        return "skipped (install onnxruntime)"
    return "passed" if passes and counterexample.exact else \
        f"failed (onnxruntime margin {worst:.3g}, exact {counterexample.exact})"
