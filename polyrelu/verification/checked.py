"""The search with its answer re-checked: a "holds" stands only if the independent
checker accepts its certificate; otherwise the answer is "unknown" with the checker's
reason. (The search never imports the checker; this module joins the two.)"""

import dataclasses

from ..errors import PolyreluError
from . import search
from .checker import check_certificate

__all__ = ["verify"]


def verify(network, prop, **options):
    """:func:`polyrelu.verification.search.verify`, then :func:`check_certificate` on a
    "holds" answer.

    Parameters
    ----------
    network, prop
        As for :func:`polyrelu.verification.search.verify`.
    **options
        Passed to the search (``timeout``, ``options``, ``exact_threshold``, ...).

    Returns
    -------
    VerificationResult
        The search's result; a "holds" whose certificate the checker rejects becomes
        "unknown" (no certificate; ``stats["certificate_rejected"]`` says why), an
        accepted one carries ``stats["certificate"] = "checked"``.

    """
    result = search.verify(network, prop, **options)
    if result.status != "holds":
        return result
    try:
        check_certificate(network, prop, result.certificate, options=options.get("options"))
    except PolyreluError as err:
        stats = dict(result.stats, certificate_rejected=str(err))
        return dataclasses.replace(result, status="unknown", certificate=None, stats=stats)
    return dataclasses.replace(result, stats=dict(result.stats, certificate="checked"))
