"""`Layer`: one affine map followed by one piecewise-linear activation block.

Every piecewise-linear feed-forward network polyrelu reads is lowered to a sequence of
layers. Layer ``l`` maps its input ``h`` to

* ``z = weight @ h + bias`` (the *pre-activations*, ``n_z`` of them),
* ``u = units(z)`` element-wise: a ReLU unit gives ``max(z_i, 0)``, a linear unit ``z_i``,
* the output ``[u[keep], max(u[windows[0]]), ..., max(u[windows[-1]])]``: the kept
  entries of ``u``, then the maximum over each *window* (a row of indices into ``u``,
  padded with -1).

The kinks are the ReLU units (their sign) and the windows (their argmax, the lowest
index on ties). Everything else a network holds is linear and folds into the weights:
LeakyReLU/PReLU ``a z + (1 - a) relu(z)`` and Abs ``2 relu(z) - z`` are one ReLU and one
linear unit, HardTanh/Clip ``lo + relu(z - lo) - relu(z - hi)`` two ReLU units,
residual branches are carried by linear units, pooling and BatchNorm are affine. The
regions are then those of the original units: a LeakyReLU, PReLU or Abs unit has the
kink of its ReLU, a HardTanh unit the two kinks ``z = lo`` and ``z = hi``.

A pattern is a boolean vector with one *slot* per ReLU unit (active: ``z > 0``) and,
per window, one slot per window position (one-hot: the argmax).
"""

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidNetworkError

__all__ = ["LINEAR", "RELU", "Layer"]

#: Unit codes in :attr:`Layer.units`.
RELU, LINEAR = 1, 0


@dataclass(frozen=True, eq=False)
class Layer:
    """One layer: an affine map, element-wise ReLU or linear units, kept entries, windows.

    Parameters
    ----------
    weight : array_like, shape (n_z, n_in)
    bias : array_like, shape (n_z,)
    units : array_like of int, shape (n_z,), optional
        :data:`RELU` (1) or :data:`LINEAR` (0) per pre-activation; default all ReLU.
    keep : array_like of int, optional
        Indices of ``u`` passed to the output as they are; default all of them.
    windows : array_like of int, shape (n_windows, k), optional
        Indices of ``u`` whose maximum is an output, -1 padding; default none.
    names : tuple of (start, stop, text), optional
        Where the pre-activations ``start:stop`` come from (an ONNX node, a torch module),
        for error messages and kink names.
    window_names : tuple of (start, stop, text), optional
        The same for windows.

    Examples
    --------
    >>> import numpy as np
    >>> layer = Layer.build(np.eye(4), np.zeros(4), keep=[], windows=[[0, 1], [2, 3]])
    >>> layer.n_out, layer.num_slots
    (2, 8)
    >>> layer.output(np.array([[1.0, -2.0, -3.0, 4.0]])).tolist()
    [[1.0, 4.0]]
    """

    weight: np.ndarray
    bias: np.ndarray
    units: np.ndarray
    keep: np.ndarray
    windows: np.ndarray
    names: tuple = ()
    window_names: tuple = ()

    @classmethod
    def build(cls, weight, bias, *, units=None, keep=None, windows=None, names=(),
              window_names=()):
        """A validated, read-only :class:`Layer` (float64 weights, int64 indices)."""
        weight = np.array(weight, dtype=np.float64, copy=True)
        bias = np.array(bias, dtype=np.float64, copy=True).reshape(-1)
        if weight.ndim != 2 or bias.shape != (weight.shape[0],):
            raise InvalidNetworkError(
                f"a layer needs a 2-D weight and a matching bias, got shapes {weight.shape} "
                f"and {bias.shape}")
        n_z = weight.shape[0]
        units = np.full(n_z, RELU, np.int64) if units is None else _indices(units, "units")
        keep = np.arange(n_z) if keep is None else _indices(keep, "kept indices").reshape(-1)
        windows = (np.zeros((0, 1), np.int64) if windows is None
                   else _indices(windows, "windows"))
        if windows.ndim != 2 or (windows.size == 0 and windows.shape[0]):
            raise InvalidNetworkError(f"windows must be a 2-D index array, got {windows.shape}")
        _check_indices(units, keep, windows, n_z)
        units = units.astype(np.int8)
        layer = cls(weight, bias, units, keep, windows, tuple(names), tuple(window_names))
        for array in (weight, bias, units, keep, windows):
            array.setflags(write=False)
        return layer

    @classmethod
    def affine(cls, weight, bias, names=()):
        """An output layer: linear units, all kept, no windows."""
        n_z = np.shape(weight)[0]
        return cls.build(weight, bias, units=np.full(n_z, LINEAR), names=names)

    # -- shape -----------------------------------------------------------------
    @property
    def n_z(self):
        """Number of pre-activations."""
        return self.weight.shape[0]

    @property
    def n_in(self):
        """Input width."""
        return self.weight.shape[1]

    @property
    def n_out(self):
        """Output width: kept entries plus windows."""
        return self.keep.size + self.windows.shape[0]

    @property
    def relu_units(self):
        """Indices of the ReLU units among the pre-activations."""
        return np.flatnonzero(self.units == RELU)

    @property
    def linear_mask(self):
        """True for each linear unit (no kink) among the pre-activations."""
        return self.units == LINEAR

    @property
    def num_slots(self):
        """Pattern slots: one per ReLU unit, one per window position."""
        return int(np.count_nonzero(self.units == RELU)) + self.windows.size

    @property
    def is_relu(self):
        """True for a plain hidden ReLU layer: all units ReLU, all kept, no windows."""
        return (bool(np.all(self.units == RELU)) and self.windows.shape[0] == 0
                and self.keep.size == self.n_z and bool(np.all(self.keep == np.arange(self.n_z))))

    @property
    def is_affine(self):
        """True for a layer without kinks that outputs its pre-activations as they are."""
        return (bool(np.all(self.units == LINEAR)) and self.windows.shape[0] == 0
                and self.keep.size == self.n_z and bool(np.all(self.keep == np.arange(self.n_z))))

    # -- evaluation ------------------------------------------------------------
    def activate(self, z):
        """``u`` for pre-activations ``z`` of shape (n, n_z)."""
        return np.where(self.units == RELU, np.maximum(z, 0.0), z)

    def argmax(self, u):
        """Argmax position (n, n_windows) of every window at unit values ``u`` (lowest on ties)."""
        if not self.windows.shape[0]:
            return np.zeros((u.shape[0], 0), dtype=np.int64)
        return np.argmax(self._window_values(u), axis=2)

    def output(self, z):
        """The layer's output for pre-activations ``z`` of shape (n, n_z)."""
        u = self.activate(z)
        if not self.windows.shape[0]:
            return u[:, self.keep]
        return np.concatenate([u[:, self.keep], self._window_values(u).max(axis=2)], axis=1)

    def slots(self, z):
        """Boolean pattern slots (n, num_slots) at pre-activations ``z``."""
        relu = z[:, self.units == RELU] > 0.0
        if not self.windows.shape[0]:
            return relu
        position = self.argmax(self.activate(z))
        onehot = position[:, :, None] == np.arange(self.windows.shape[1])
        return np.concatenate([relu, onehot.reshape(z.shape[0], self.windows.size)], axis=1)

    def sources(self, slots):
        """Where each output comes from under pattern slots ``slots`` (num_slots,):
        the index of the pre-activation it equals, or -1 where it is zero.

        >>> layer = Layer.build(np.eye(3), np.zeros(3), keep=[2], windows=[[0, 1, -1]])
        >>> layer.sources(np.array([False, True, True, False, True, False])).tolist()
        [2, 1]
        """
        slots = np.asarray(slots, dtype=bool)
        relu = self.units == RELU
        active = ~relu
        active[relu] = slots[:np.count_nonzero(relu)]
        source = np.where(active, np.arange(self.n_z), -1)
        out = source[self.keep]
        if not self.windows.shape[0]:
            return out
        onehot = slots[np.count_nonzero(relu):].reshape(self.windows.shape)
        entry = self.windows[np.arange(self.windows.shape[0]), onehot.argmax(axis=1)]
        return np.concatenate([out, source[entry]])

    def _window_values(self, u):
        values = u[:, np.maximum(self.windows, 0)]
        return np.where(self.windows >= 0, values, -np.inf)

    # -- names -----------------------------------------------------------------
    def unit_name(self, index):
        """Provenance of pre-activation ``index`` (``"unit 5"`` without names)."""
        return _name(self.names, index, "unit")

    def window_name(self, index):
        """Provenance of window ``index``."""
        return _name(self.window_names, index, "max window")


def _name(names, index, what):
    for start, stop, text in names:
        if start <= index < stop:
            return f"{text}, {what} {index - start}"
    return f"{what} {index}"


def _indices(values, what):
    """``values`` as int64, refusing anything that is not an integer array that int64 holds
    exactly (a uint64 or float array must not wrap or round into another index)."""
    array = np.asarray(values)
    if array.size == 0:
        return array.astype(np.int64)
    if array.dtype.kind not in "iu":
        raise InvalidNetworkError(f"{what} must be integers, got dtype {array.dtype}")
    if array.dtype.kind == "u" and array.max() > np.iinfo(np.int64).max:
        raise InvalidNetworkError(f"{what} has an entry {array.max()} beyond int64")
    return array.astype(np.int64)


def _check_indices(units, keep, windows, n_z):
    if units.shape != (n_z,) or not np.isin(units, (RELU, LINEAR)).all():
        raise InvalidNetworkError(
            f"units must hold {n_z} codes 0 (linear) or 1 (ReLU), got shape {units.shape}")
    if keep.size and (keep.min() < 0 or keep.max() >= n_z):
        raise InvalidNetworkError(f"kept indices must lie in 0..{n_z - 1}")
    if windows.size:
        if windows.min() < -1 or windows.max() >= n_z:
            raise InvalidNetworkError(f"window indices must lie in 0..{n_z - 1} (or -1)")
        if not (windows[:, 0] >= 0).all() or (np.diff((windows >= 0).astype(int)) > 0).any():
            raise InvalidNetworkError("each window starts with an entry; -1 pads only its end")
