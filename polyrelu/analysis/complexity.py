"""Region counts the way papers track them: over training, on the full box, on 2-D slices
through data points and in l_inf balls around inputs (local complexity).

:class:`RegionCounter` holds what to count; call it with a network (or a torch module,
converted by :func:`polyrelu.network.from_torch`) once per epoch, in a training loop, or
give :func:`count_checkpoints` the saved models. Every count is exact: the layer-wise
splitting count (:func:`polyrelu.count_regions`) on the box and the balls, the exact
slice (:func:`polyrelu.slice_through`) on the planes.
"""

from dataclasses import dataclass, field

import numpy as np

from ..errors import PolyreluError
from ..geometry.domain import Domain
from ..network.loaders import load_network
from ..network.model import Network
from ..planar.slices import slice_through
from ..regions.splitting import count_regions

__all__ = ["RegionCounter", "count_checkpoints"]


@dataclass
class RegionCounter:
    """What to count, and the counts recorded so far (one dict per call in ``history``).

    Parameters
    ----------
    box : Domain or (lower, upper), optional
        Count every region of this domain (low input dimension).
    slices : list of (3, d) arrays, optional
        Count the pieces of the 2-D slice through each triple of points.
    centres : (n, d) array, optional
        Count the regions of the l_inf ball of ``radius`` around each point; the record
        holds each count and their mean (the local complexity).
    radius : float
    input_shape : tuple, optional
        For torch modules: one sample's shape (see :func:`polyrelu.network.from_torch`).

    Examples
    --------
    >>> from polyrelu import Network
    >>> counter = RegionCounter(box=([-1.0], [1.0]), centres=[[0.5]], radius=0.25)
    >>> absolute = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    >>> counter(absolute, epoch=0)
    {'epoch': 0, 'box': 2, 'balls': [1], 'ball_mean': 1.0}
    """

    box: object = None
    slices: list = field(default_factory=list)
    centres: object = None
    radius: float = 0.05
    input_shape: tuple = None
    history: list = field(default_factory=list)

    def __post_init__(self):
        if self.box is not None and not isinstance(self.box, Domain):
            self.box = Domain.box(*self.box)
        self.slices = [np.asarray(points, dtype=np.float64) for points in self.slices]
        if self.centres is not None:
            self.centres = np.atleast_2d(np.asarray(self.centres, dtype=np.float64))
        if self.box is None and not self.slices and self.centres is None:
            raise PolyreluError("a RegionCounter needs a box, slices or centres to count in")

    def __call__(self, model, epoch=None):
        """Count for ``model`` (a :class:`Network` or a torch module), append the record to
        ``history`` and return it."""
        record = {"epoch": len(self.history) if epoch is None else epoch,
                  **self.measure(self._network(model))}
        self.history.append(record)
        return record

    def measure(self, network):
        """The counts for one network: ``box``, ``slice_i`` per slice, ``balls`` and
        ``ball_mean`` (as present)."""
        record = {}
        if self.box is not None:
            record["box"] = count_regions(network, self.box)[0]
        for i, points in enumerate(self.slices):
            record[f"slice_{i}"] = len(slice_through(network, points))
        if self.centres is not None:
            counts = [count_regions(network, Domain.ball(c, self.radius))[0]
                      for c in self.centres]
            record["balls"] = counts
            record["ball_mean"] = float(np.mean(counts))
        return record

    def frame(self):
        """The history as a pandas DataFrame, one row per record (the ball counts as one
        column of lists)."""
        import pandas

        return pandas.DataFrame(self.history)

    def plot(self, path):
        """Draw the curves (count against epoch, one per box, slice and the ball mean) to
        ``path`` (.png or .svg; needs matplotlib)."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise PolyreluError("plots need matplotlib: pip install 'polyrelu[plots]'") \
                from None
        keys = [k for k in self.history[0] if k not in ("epoch", "balls")] if self.history \
            else []
        figure, axes = plt.subplots(figsize=(6, 4))
        epochs = [record["epoch"] for record in self.history]
        for key in keys:
            axes.plot(epochs, [record[key] for record in self.history], marker="o",
                      label=key.replace("_", " "))
        axes.set_xlabel("epoch")
        axes.set_ylabel("regions (exact)")
        axes.set_yscale("log")
        axes.legend()
        figure.tight_layout()
        figure.savefig(path)
        plt.close(figure)

    def _network(self, model):
        if isinstance(model, Network):
            return model
        from ..network.torch_import import from_torch

        return from_torch(model, self.input_shape)


def count_checkpoints(paths, counter, *, epochs=None):
    """Count with ``counter`` for each saved model in ``paths`` (any file
    :func:`polyrelu.load_network` reads safely); returns ``counter.history``."""
    epochs = range(len(paths)) if epochs is None else epochs
    for epoch, path in zip(epochs, paths):
        counter(load_network(path), epoch=epoch)
    return counter.history
