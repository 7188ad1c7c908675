"""``polyrelu regions``: enumerate (or count) the linear regions over a domain."""

from ..analysis.table import region_table
from ..errors import PolyreluError, TimeLimitError
from ..options import Options
from ..regions.checkpoint import Checkpoint, spill_checkpoint
from ..regions.crosscheck import cross_check
from ..regions.parallel import count_parallel, enumerate_parallel
from ..regions.splitting import count_regions
from ..regions.walk import enumerate_regions
from .arguments import add_command, add_timeout, inputs, positive_int, seconds
from .outputs import (
    add_table_option,
    check_checkpoint,
    check_output,
    check_table,
    write_output,
    write_table_output,
)

__all__ = ["add_parser", "run"]


def add_parser(commands):
    """Declare the ``regions`` command and its options."""
    parser = add_command(
        commands, "regions", run,
        "enumerate the linear regions of a network over a domain",
        "Enumerate every activation region of NET over the input domain by walking their "
        "adjacency graph.")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="save the region complex to FILE (.npz); the regions are "
                             "streamed to disk as they are found (a spill beside FILE, or "
                             "the checkpoint), not kept in memory")
    parser.add_argument("--facet-method", choices=("auto", "qhull", "lp"), default="auto",
                        help="how facets are found (default: auto)")
    parser.add_argument("--cross-check", action="store_true",
                        help="also run the layer-wise splitting enumerator and report any "
                             "region found by one and not the other")
    parser.add_argument("--count-only", action="store_true",
                        help="only count the regions (splitting enumerator, no facets)")
    parser.add_argument("--checkpoint", metavar="DIR",
                        help="stream regions (with --count-only: the count and the work "
                             "left) to DIR as they are found; rerunning the same command "
                             "resumes an interrupted run from there")
    parser.add_argument("--checkpoint-seconds", type=seconds, default=5.0, metavar="S",
                        help="write the checkpoint at least every S seconds (default: 5)")
    parser.add_argument("--jobs", type=positive_int, default=1, metavar="N",
                        help="build (or count) regions in N worker processes")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="build regions on a Dask cluster (dask.distributed scheduler)")
    add_table_option(parser, "regions")
    add_timeout(parser)


def _refuse_ignored_options(args):
    """Options that --count-only would silently ignore are refused."""
    ignored = [name for name, given in (
        ("--cross-check", args.cross_check), ("-o", args.output), ("--table", args.table),
        ("--facet-method", args.facet_method != "auto")) if given]
    if args.count_only and ignored:
        raise PolyreluError(f"--count-only counts regions without building them: "
                            f"{', '.join(ignored)} cannot be used with it")


def run(args):
    """Enumerate or count the regions; the results as a dict."""
    _refuse_ignored_options(args)
    check_output(args.output, "-o")
    check_table(args.table)
    check_checkpoint(args.checkpoint)
    network, domain, progress = inputs(args)
    if args.count_only:
        return _count(args, network, domain, progress)
    options = Options(facet_method=args.facet_method)
    checkpoint = spill = None
    if args.checkpoint:
        checkpoint = Checkpoint(args.checkpoint, network, domain, options,
                                flush_seconds=args.checkpoint_seconds)
    # regions go to disk as they are found (not kept in memory) unless the cross-check
    # or the table needs them: to the checkpoint, or to a spill beside the output, merged into it
    streamed = bool(args.output or args.checkpoint) and not (args.cross_check or args.table)
    if streamed and checkpoint is None:
        checkpoint = spill = spill_checkpoint(args.output, network, domain, options,
                                              flush_seconds=args.checkpoint_seconds)
    try:
        complex_ = _enumerate(args, network, domain, options, checkpoint, progress,
                              keep=not streamed)
        results = _summary(complex_, network, domain)
        if args.cross_check:
            results.update(_cross_check(complex_, network, domain, progress))
        if args.output:
            write_output(results, "saved", args.output, complex_.save)
        write_table_output(results, args.table, lambda: region_table(complex_))
    except TimeLimitError as err:
        raise TimeLimitError(str(err), partial_summary(err.partial, args.checkpoint)) from err
    finally:
        if spill is not None:
            spill.remove()
    return results


def _count(args, network, domain, progress):
    """The splitting count (in worker processes, on Dask or resumable when asked)."""
    try:
        if args.jobs > 1 or args.scheduler or args.checkpoint:
            count, stats = count_parallel(network, domain, jobs=args.jobs,
                                          scheduler=args.scheduler, checkpoint=args.checkpoint,
                                          checkpoint_seconds=args.checkpoint_seconds,
                                          progress=progress, deadline=args.deadline)
        else:
            count, stats = count_regions(network, domain, progress=progress,
                                         deadline=args.deadline)
    except TimeLimitError as err:
        found = (err.partial or {}).get("regions_so_far", "not known")
        partial = {"regions_found": found}
        if args.checkpoint:
            partial["resume"] = f"run the same command again (checkpoint {args.checkpoint})"
        raise TimeLimitError(str(err), partial) from err
    results = {"regions": count, "seconds": round(stats["seconds"], 3), "lps": stats["lps"],
               "lps_per_region": round(stats["lps"] / max(count, 1), 3),
               "regions_per_second": round(count / max(stats["seconds"], 1e-9), 1),
               "method": "splitting (count only)"}
    if stats.get("resumed_regions"):
        results["resumed_regions"] = stats["resumed_regions"]
    return results


def _enumerate(args, network, domain, options, checkpoint, progress, keep):
    if args.jobs > 1 or args.scheduler:
        return enumerate_parallel(network, domain, jobs=args.jobs, scheduler=args.scheduler,
                                  options=options, checkpoint=checkpoint, progress=progress,
                                  deadline=args.deadline, keep=keep)
    return enumerate_regions(network, domain, options=options, progress=progress,
                             checkpoint=checkpoint, deadline=args.deadline, keep=keep)


def partial_summary(complex_, checkpoint=None):
    """What an enumeration stopped by its time limit found (a partial RegionComplex, the
    stats of a walk that kept no regions, or None when nothing was)."""
    if complex_ is None:
        return {"regions_found": "not known (stopped by the hard time limit)"}
    stats = complex_ if isinstance(complex_, dict) else complex_.stats
    results = {"regions_found": stats.get("regions", len(complex_)),
               "edges_found": stats.get("edges", "unknown"),
               "regions_queued": stats.get("queued", "unknown")}
    if checkpoint:
        results["resume"] = f"run the same command again (checkpoint {checkpoint})"
    return results


def _summary(complex_, network, domain):
    stats = complex_.stats
    results = {
        "regions": len(complex_),
        "affine_pieces": complex_.affine_piece_count(),
        "edges": stats["edges"],
        "seconds": round(stats["seconds"], 3),
        "lps": stats["lps"],
        "lps_per_region": round(stats["lps"] / max(len(complex_), 1), 3),
        "regions_per_second": round(len(complex_) / max(stats["seconds"], 1e-9), 1),
        "network": repr(network),
        "domain": repr(domain),
    }
    if stats.get("resumed_regions"):
        results["resumed_regions"] = stats["resumed_regions"]
    if stats["thin_regions"]:
        results["thin_regions_skipped"] = stats["thin_regions"]
    return results


def _cross_check(complex_, network, domain, progress):
    report = cross_check(network, domain, walked=complex_, progress=progress)
    results = {
        "cross_check": "agree" if report.agree else "DISAGREE",
        "splitting_regions": report.second_count,
        "only_in_walk": len(report.only_in_first),
        "only_in_splitting": len(report.only_in_second),
        "mismatched": len(report.mismatched),
    }
    points = (report.only_in_first + report.only_in_second)[:5]
    if points:
        results["missing_region_points"] = [point.tolist() for point in points]
    return results
