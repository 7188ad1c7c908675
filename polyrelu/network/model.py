"""`Network`: affine layers with ReLU between them, in float64.

A network with layers ``(W_0, b_0), ..., (W_L, b_L)`` computes
``f(x) = W_L relu(W_{L-1} relu(... relu(W_0 x + b_0) ...) + b_{L-1}) + b_L``.
Every layer but the last is followed by a ReLU; its outputs are the *hidden
neurons*, numbered 0..N-1 layer by layer (the *global neuron index*).
"""

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from ..errors import (
    InvalidNetworkError,
    NumericalRangeError,
    SizeLimitError,
    UnsupportedNetworkError,
)
from .layers import LINEAR, Layer

__all__ = [
    "MAX_PARAMETERS",
    "LocalAffineMaps",
    "Network",
    "from_affine_steps",
    "network_fingerprint",
]

#: Default limit on the number of parameters (array entries) a network file may hold,
#: counted on the file's own tensors from their headers before loading, and on the
#: largest matrix an import may build: 10^7 float64 numbers are 80 MB. The exact
#: engines need far less (ACAS Xu: 13,305); a 10^4 x 10^4 layer (10^8 entries) is
#: refused. The loaders take ``max_parameters`` to raise it.
MAX_PARAMETERS = 10_000_000


@dataclass(frozen=True)
class LocalAffineMaps:
    """The affine maps a network computes for one fixed activation pattern.

    Attributes
    ----------
    pre_A : ndarray, shape (N, d)
        Row j is the gradient of hidden neuron j's pre-activation.
    pre_c : ndarray, shape (N,)
        Pre-activation of neuron j is ``pre_A[j] @ x + pre_c[j]``.
    W_eff : ndarray, shape (m, d)
        The network output is ``W_eff @ x + b_eff`` wherever the pattern holds.
    b_eff : ndarray, shape (m,)
    """

    pre_A: np.ndarray
    pre_c: np.ndarray
    W_eff: np.ndarray
    b_eff: np.ndarray


class Network:
    """A piecewise-linear feed-forward network: a sequence of :class:`Layer` s.

    ``Network(weights, biases)`` is the ReLU network
    ``f(x) = W_L relu(W_{L-1} relu(... relu(W_0 x + b_0) ...) + b_{L-1}) + b_L``;
    :meth:`from_layers` builds any network of layers with ReLU and linear units and max
    windows (see :mod:`polyrelu.network.layers`): what the ONNX and torch loaders produce.
    The last layer is affine.

    A *pattern* is a boolean vector of the network's ``num_hidden`` slots, layer by layer
    (the *global slot index*): one per ReLU unit (True: pre-activation > 0) and, per max
    window, one-hot over its positions (the argmax, lowest on ties). For a ReLU network
    the slots are the hidden neurons. The *kinks* are where a region can end: kink
    ``k < num_hidden`` is the ReLU of slot ``k``, kink ``num_hidden + p`` the tie between
    the two window positions ``window_pairs[p]``.

    Parameters
    ----------
    weights : sequence of array_like, each of shape (out, in)
    biases : sequence of array_like, each of shape (out,)
        Layer ``l`` maps ``x`` to ``weights[l] @ x + biases[l]``; a ReLU follows
        every layer except the last.

    allow_extreme_numerics : bool, default False
        Keep weights polyrelu would refuse: denormal entries (nonzero magnitudes below
        ``2.2e-308``, the smallest normal float64). Also recorded on the network
        (:attr:`allow_extreme_numerics`): the engines then skip the checks of
        :func:`polyrelu.geometry.domain.check_numerics` on it, at the risk of wrong answers.

    Raises
    ------
    InvalidNetworkError
        If shapes do not chain, an entry is NaN or infinite, or there is no layer.
    NumericalRangeError
        If an entry is denormal: float64 arithmetic on denormals loses digits
        (a denormal has fewer than 53 significant bits) and flushes to zero in
        some solver paths, so two enumerators disagree on such a network.

    Examples
    --------
    >>> import numpy as np
    >>> from polyrelu import Network
    >>> absolute = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    >>> absolute.forward([[-3.0], [2.0]]).ravel().tolist()
    [3.0, 2.0]
    >>> absolute.hidden_sizes
    (2,)
    """

    def __init__(self, weights, biases, *, allow_extreme_numerics=False):
        weights = [np.array(w, dtype=np.float64, copy=True) for w in weights]
        biases = [np.array(b, dtype=np.float64, copy=True).reshape(-1) for b in biases]
        _check_layers(weights, biases)
        layers = [Layer.build(w, b) for w, b in zip(weights[:-1], biases[:-1])]
        self._setup(layers + [Layer.affine(weights[-1], biases[-1])], allow_extreme_numerics)

    @classmethod
    def from_layers(cls, layers, *, allow_extreme_numerics=False):
        """The network of a sequence of :class:`Layer` s, the last one affine.

        >>> import numpy as np
        >>> from polyrelu.network.layers import Layer
        >>> pool = Network.from_layers([Layer.build(np.eye(3), np.zeros(3), keep=[],
        ...                                         windows=[[0, 1, 2]]),
        ...                             Layer.affine([[2.0]], [0.0])])
        >>> pool.forward([[1.0, -5.0, 3.0]]).tolist(), pool.is_relu_mlp
        ([[6.0]], False)
        >>> pool.activation_pattern([[1.0, -5.0, 3.0]]).astype(int).tolist()
        [[1, 0, 1, 0, 0, 1]]
        """
        network = cls.__new__(cls)
        layers = list(layers)
        _check_layers([layer.weight for layer in layers], [layer.bias for layer in layers],
                      chained=False)
        for i in range(1, len(layers)):
            if layers[i].n_in != layers[i - 1].n_out:
                raise InvalidNetworkError(
                    f"layer {i} takes {layers[i].n_in} inputs, but layer {i - 1} has "
                    f"{layers[i - 1].n_out} outputs")
        if not layers[-1].is_affine:
            raise InvalidNetworkError("the last layer must be affine (no kinks)")
        network._setup(layers, allow_extreme_numerics)
        return network

    def _setup(self, layers, allow_extreme_numerics):
        weights = [layer.weight for layer in layers]
        biases = [layer.bias for layer in layers]
        if not allow_extreme_numerics:
            _check_denormals(weights, biases)
        self.allow_extreme_numerics = bool(allow_extreme_numerics)
        self._layers = tuple(layers)
        self._weights = tuple(weights)
        self._biases = tuple(biases)
        hidden = layers[:-1]
        self._offsets = np.concatenate([[0], np.cumsum([layer.num_slots for layer in hidden],
                                                       dtype=np.int64)])
        self._z_offsets = np.concatenate([[0], np.cumsum([layer.n_z for layer in hidden],
                                                         dtype=np.int64)])
        self._relu_mlp = all(layer.is_relu for layer in hidden)
        _check_window_pairs(hidden)
        self._slot_units, self._window_slots = self._slot_arrays()
        self._pairs = None

    # -- shape -----------------------------------------------------------------
    @property
    def layers(self):
        """Tuple of :class:`Layer` s, the last one affine."""
        return self._layers

    @property
    def weights(self):
        """Tuple of weight matrices, ``weights[l]`` of shape (out_l, in_l)."""
        return self._weights

    @property
    def biases(self):
        """Tuple of bias vectors, ``biases[l]`` of shape (out_l,)."""
        return self._biases

    @property
    def is_relu_mlp(self):
        """True when every hidden layer is a plain ReLU layer (Linear + ReLU in sequence)."""
        return self._relu_mlp

    def require_relu_mlp(self, what):
        """Raise :class:`UnsupportedNetworkError` unless this is a Linear + ReLU network.

        ``what`` names the computation that needs one (it goes into the message).
        """
        if not self._relu_mlp:
            raise UnsupportedNetworkError(
                f"{what} works on Linear + ReLU networks only; this network has "
                f"{self.describe_units()}")

    def describe_units(self):
        """A short description of the network's unit kinds, e.g. ``"ReLU, linear units and
        max windows"``."""
        kinds = []
        hidden = self._layers[:-1]
        if any(layer.relu_units.size for layer in hidden):
            kinds.append("ReLU")
        if any((layer.units == LINEAR).any() for layer in hidden):
            kinds.append("linear units")
        if any(layer.windows.shape[0] for layer in hidden):
            kinds.append("max windows")
        return ", ".join(kinds[:-1]) + " and " + kinds[-1] if len(kinds) > 1 else (
            kinds[0] if kinds else "no hidden units")

    @property
    def num_parameters(self):
        """Number of weight and bias entries, all layers."""
        return sum(w.size + b.size for w, b in zip(self._weights, self._biases))

    @property
    def input_dim(self):
        """Dimension d of the input space."""
        return self._weights[0].shape[1]

    @property
    def output_dim(self):
        """Dimension m of the output."""
        return self._weights[-1].shape[0]

    @property
    def hidden_sizes(self):
        """Output widths of the hidden layers, a tuple (the ReLU widths of a ReLU network)."""
        return tuple(layer.n_out for layer in self._layers[:-1])

    @property
    def slot_sizes(self):
        """Pattern slots per hidden layer, a tuple."""
        return tuple(int(n) for n in np.diff(self._offsets))

    @property
    def num_hidden(self):
        """Total number N of pattern slots (the hidden neurons of a ReLU network)."""
        return int(self._offsets[-1])

    @property
    def num_preactivations(self):
        """Total number Z of hidden pre-activations (N for a ReLU network)."""
        return int(self._z_offsets[-1])

    def neuron_layer(self):
        """Array of shape (N,): the hidden layer of each global slot index."""
        return np.repeat(np.arange(len(self._layers) - 1), self.slot_sizes)

    def slot_units(self):
        """Array of shape (N,): the global pre-activation index of each slot's unit (for a
        window position, the unit it reads; -1 for a padded position). Read-only."""
        return self._slot_units

    def window_slots(self):
        """Boolean array (N,): True for the slots of window positions. Read-only."""
        return self._window_slots

    def _slot_arrays(self):
        units, windowed = [np.zeros(0, np.int64)], [np.zeros(0, bool)]
        for i, layer in enumerate(self._layers[:-1]):
            offset = self._z_offsets[i]
            windows = np.where(layer.windows >= 0, layer.windows + offset, -1)
            units += [layer.relu_units + offset, windows.reshape(-1)]
            windowed += [np.zeros(layer.relu_units.size, bool), np.ones(layer.windows.size, bool)]
        units, windowed = np.concatenate(units).astype(np.int64), np.concatenate(windowed)
        units.setflags(write=False)
        windowed.setflags(write=False)
        return units, windowed

    def neuron_name(self, index):
        """Human-readable name of a global slot index, e.g. ``"layer 0, unit 3"``."""
        layer = int(np.searchsorted(self._offsets, index, side="right") - 1)
        local = int(index - self._offsets[layer])
        spec = self._layers[layer]
        relu = spec.relu_units
        if local < relu.size:
            return f"layer {layer}, {spec.unit_name(int(relu[local]))}"
        window, position = divmod(local - relu.size, spec.windows.shape[1])
        return f"layer {layer}, {spec.window_name(window)} position {position}"

    def preactivation_name(self, index):
        """Human-readable name of a global pre-activation index, e.g. ``"layer 0, unit 3"``."""
        layer = int(np.searchsorted(self._z_offsets, index, side="right") - 1)
        local = int(index - self._z_offsets[layer])
        return f"layer {layer}, {self._layers[layer].unit_name(local)}"

    # -- kinks -----------------------------------------------------------------
    @property
    def window_pairs(self):
        """Array (P, 2) of slot pairs ``(a, b)``, ``a < b``, of the positions of one window:
        kink ``num_hidden + p`` is their tie."""
        if self._pairs is None:
            parts = [np.zeros((0, 2), np.int64)]
            for i, layer in enumerate(self._layers[:-1]):
                n, k = layer.windows.shape
                if not n:
                    continue
                first, second = np.triu_indices(k, 1)
                base = self._offsets[i] + layer.relu_units.size + k * np.arange(n)[:, None]
                parts.append(np.stack([(base + first).ravel(), (base + second).ravel()], 1))
            self._pairs = np.concatenate(parts)
            self._pairs.setflags(write=False)
        return self._pairs

    def kink_name(self, kink):
        """Human-readable name of a kink: a ReLU unit, or a tie of two window positions."""
        if kink < self.num_hidden:
            return self.neuron_name(kink)
        a, b = self.window_pairs[kink - self.num_hidden]
        position = self.neuron_name(b).rsplit(" position ", 1)[1]
        return f"{self.neuron_name(a)} tied with position {position}"

    def kink_rows(self, pattern, maps):
        """The constraints of ``pattern``'s region: rows ``G @ x + g >= 0`` and their kinks.

        One row per ReLU slot (its pre-activation, signed by the slot's state) and, per
        window, one per other position (the argmax's value minus that position's).

        Returns
        -------
        (ndarray (r, d), ndarray (r,), ndarray of int (r,))
            ``G``, ``g`` and the kink of every row.

        Examples
        --------
        >>> net = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
        >>> pattern = np.array([True, False])
        >>> G, g, kinks = net.kink_rows(pattern, net.affine_maps(pattern))
        >>> G.tolist(), kinks.tolist()
        ([[1.0], [1.0]], [0, 1])
        """
        pattern = np.asarray(pattern, dtype=bool)
        units, windowed = self.slot_units(), self.window_slots()
        relu = np.flatnonzero(~windowed)
        sign = np.where(pattern[relu], 1.0, -1.0)
        rows_G = [maps.pre_A[units[relu]] * sign[:, None]]
        rows_g, kinks = [maps.pre_c[units[relu]] * sign], [relu]
        pairs = self.window_pairs
        if pairs.size:
            lose = pattern[pairs[:, 0]] ^ pattern[pairs[:, 1]]
            pairs, kept = pairs[lose], np.flatnonzero(lose) + self.num_hidden
            valid = (units[pairs] >= 0).all(axis=1)
            pairs, kept = pairs[valid], kept[valid]
            win = np.where(pattern[pairs[:, 0]], pairs[:, 0], pairs[:, 1])
            other = np.where(pattern[pairs[:, 0]], pairs[:, 1], pairs[:, 0])
            u_A, u_c = self._unit_maps(pattern, maps)
            rows_G.append(u_A[units[win]] - u_A[units[other]])
            rows_g.append(u_c[units[win]] - u_c[units[other]])
            kinks.append(kept)
        return np.concatenate(rows_G), np.concatenate(rows_g), np.concatenate(kinks)

    def cross(self, pattern, kink):
        """The pattern across kink ``kink`` of ``pattern``'s region (its neighbour when no
        other slot changes): a ReLU slot flips, a window's argmax moves to the tied position.
        """
        pattern = np.array(pattern, dtype=bool)
        if kink < self.num_hidden:
            pattern[kink] = not pattern[kink]
        else:
            a, b = self.window_pairs[kink - self.num_hidden]
            pattern[a], pattern[b] = pattern[b], pattern[a]
        return pattern

    def _unit_maps(self, pattern, maps):
        """Affine maps of every hidden ``u`` (pre-activation after its unit) under ``pattern``."""
        active = np.ones(self.num_preactivations, dtype=bool)
        units, windowed = self.slot_units(), self.window_slots()
        active[units[~windowed]] = pattern[~windowed]
        return maps.pre_A * active[:, None], maps.pre_c * active

    # -- evaluation ------------------------------------------------------------
    def forward(self, x):
        """Network output at points ``x`` of shape (n, d) (or (d,)); returns (n, m)."""
        h = self._as_points(x)
        for layer in self._layers[:-1]:
            h = layer.output(h @ layer.weight.T + layer.bias)
        return h @ self._weights[-1].T + self._biases[-1]

    def preactivations(self, x):
        """Hidden pre-activations at points ``x``: array (n, Z), layer by layer."""
        return self._hidden(x, lambda layer, z: z, self.num_preactivations)

    def activation_pattern(self, x):
        """Boolean array (n, N): the pattern slots at x (a ReLU slot is active when its
        pre-activation is > 0; a window's slot is set at its argmax, lowest on ties)."""
        return self._hidden(x, lambda layer, z: layer.slots(z), self.num_hidden, bool)

    def _hidden(self, x, record, width, dtype=np.float64):
        h = self._as_points(x)
        parts = []
        for layer in self._layers[:-1]:
            z = h @ layer.weight.T + layer.bias
            parts.append(record(layer, z))
            h = layer.output(z)
        return np.concatenate(parts, axis=1) if parts else np.zeros((h.shape[0], width), dtype)

    def layer_masks(self, pattern):
        """The 0/1 float masks of ``pattern`` per hidden layer, and ones for the output layer
        (one array per weight matrix: layer l computes ``mask_l * (W_l h + b_l)``).
        ReLU networks only (:meth:`layer_sources` is the general form).

        Examples
        --------
        >>> net = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
        >>> [m.tolist() for m in net.layer_masks([True, False])]
        [[1.0, 0.0], [1.0]]
        """
        self.require_relu_mlp("layer_masks")
        pattern = np.asarray(pattern, dtype=bool)
        masks = [pattern[self._offsets[i]:self._offsets[i + 1]].astype(float)
                 for i in range(len(self._weights) - 1)]
        return masks + [np.ones(self.output_dim)]

    def layer_sources(self, pattern):
        """Per hidden layer, the pre-activation each output equals under ``pattern`` (-1:
        zero); see :meth:`Layer.sources`. Layer ``l``'s output is ``z_l[sources[l]]``."""
        pattern = np.asarray(pattern, dtype=bool)
        return [layer.sources(pattern[self._offsets[i]:self._offsets[i + 1]])
                for i, layer in enumerate(self._layers[:-1])]

    def affine_maps(self, pattern):
        """The affine maps computed under a fixed activation pattern.

        Parameters
        ----------
        pattern : array_like of bool, shape (N,)

        Returns
        -------
        LocalAffineMaps
            Pre-activation maps of every hidden unit and the output map,
            valid on the set of inputs whose activation pattern is ``pattern``.
        """
        pattern = np.asarray(pattern, dtype=bool)
        if pattern.shape != (self.num_hidden,):
            raise InvalidNetworkError(
                f"pattern has shape {pattern.shape}, expected ({self.num_hidden},)"
            )
        d = self.input_dim
        A, c = np.eye(d), np.zeros(d)
        pre_A, pre_c = [], []
        sources = self.layer_sources(pattern)
        for layer, (w, b) in enumerate(zip(self._weights, self._biases)):
            A, c = w @ A, w @ c + b
            if layer == len(self._weights) - 1:
                break
            pre_A.append(A)
            pre_c.append(c)
            A, c = _select(A, c, sources[layer])
        stack_A = np.concatenate(pre_A) if pre_A else np.zeros((0, d))
        stack_c = np.concatenate(pre_c) if pre_c else np.zeros(0)
        return LocalAffineMaps(stack_A, stack_c, A, c)

    def feature_map(self, pattern, layer=None):
        """``(A, c)`` with ``A @ x + c`` the outputs (``layer=None``) or hidden layer
        ``layer``'s outputs (its features), wherever the activation pattern is ``pattern``.

        >>> absolute = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
        >>> [a.tolist() for a in absolute.feature_map([False, True], layer=0)]
        [[[0.0], [-1.0]], [0.0, 0.0]]
        """
        maps = self.affine_maps(pattern)
        if layer is None:
            return maps.W_eff, maps.b_eff
        if not 0 <= layer < len(self.hidden_sizes):
            raise InvalidNetworkError(
                f"layer must be a hidden layer index 0..{len(self.hidden_sizes) - 1}, "
                f"got {layer}")
        rows = slice(self._z_offsets[layer], self._z_offsets[layer + 1])
        return _select(maps.pre_A[rows], maps.pre_c[rows], self.layer_sources(pattern)[layer])

    def zero_neurons(self, maps, zero_tol, lower, upper):
        """ReLU slots whose pre-activation map is identically zero on a box.

        Returns a boolean array (N,): True where the map in ``maps`` has
        magnitude at most ``zero_tol[j]`` everywhere on ``[lower, upper]``.
        Such a neuron gives the same network in both states; polyrelu calls it
        inactive (active means pre-activation > 0). Window slots are never zero.
        """
        units, windowed = self.slot_units(), self.window_slots()
        zero = np.zeros(self.num_hidden, dtype=bool)
        relu = np.flatnonzero(~windowed)
        zero[relu] = _magnitude(maps.pre_A[units[relu]], maps.pre_c[units[relu]],
                                lower, upper) <= zero_tol[relu]
        return zero

    def canonical_pattern(self, pattern, zero_tol, lower, upper):
        """Canonical form of a pattern and its maps: zero ReLU slots made inactive, and
        each window's argmax moved to the lowest position whose value equals it
        (within the slots' ``zero_tol``) on the box.

        Returns
        -------
        (ndarray of bool, LocalAffineMaps, ndarray of bool)
            The canonical pattern, its affine maps, and the zero-slot mask
            (see :meth:`zero_neurons`).
        """
        maps = self.affine_maps(pattern)
        zero = self.zero_neurons(maps, zero_tol, lower, upper)
        canonical = np.asarray(pattern, dtype=bool) & ~zero
        pairs = self.window_pairs
        if pairs.size:
            moved = self._lowest_ties(canonical, maps, zero_tol, lower, upper)
            if moved is not None:
                canonical = moved
                maps = self.affine_maps(canonical)
        return canonical, maps, zero

    def _lowest_ties(self, pattern, maps, zero_tol, lower, upper):
        """``pattern`` with each window's argmax at its lowest tied position (None: no move)."""
        pairs, units = self.window_pairs, self.slot_units()
        later = pattern[pairs[:, 1]] & (units[pairs] >= 0).all(axis=1)
        if not later.any():
            return None
        pairs = pairs[later]
        u_A, u_c = self._unit_maps(pattern, maps)
        first, second = units[pairs[:, 0]], units[pairs[:, 1]]
        tol = np.maximum(zero_tol[pairs[:, 0]], zero_tol[pairs[:, 1]])
        tied = _magnitude(u_A[first] - u_A[second], u_c[first] - u_c[second],
                          lower, upper) <= tol
        if not tied.any():
            return None
        lowest = {}
        for a, b in pairs[tied].tolist():  # b: the window's set position
            lowest[b] = min(lowest.get(b, a), a)
        moved = pattern.copy()
        moved[list(lowest)] = False
        moved[list(lowest.values())] = True
        return moved

    def _as_points(self, x):
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise InvalidNetworkError(
                f"input points have shape {x.shape}, expected (n, {self.input_dim})"
            )
        return x

    def __repr__(self):
        sizes = [self.input_dim, *self.hidden_sizes, self.output_dim]
        kinds = "" if self._relu_mlp else f", {self.describe_units()}"
        return f"Network({'-'.join(map(str, sizes))}{kinds})"


def _check_window_pairs(hidden):
    """Refuse windows whose position pairs (each a kink the engines build rows for)
    exceed :data:`MAX_PARAMETERS`: one wide global max pool has k (k - 1) / 2 of them."""
    pairs = sum(n * k * (k - 1) // 2 for n, k in (layer.windows.shape for layer in hidden))
    if pairs > MAX_PARAMETERS:
        widest = max(layer.windows.shape[1] for layer in hidden)
        raise SizeLimitError(
            f"the max windows (up to {widest} positions each) have {pairs:,} position pairs, "
            f"more than {MAX_PARAMETERS:,}: every pair is a kink the engines bound")


def _select(A, c, source):
    """Rows ``source`` of the map ``(A, c)``, zero where ``source`` is -1."""
    keep = source >= 0
    index = np.maximum(source, 0)
    return A[index] * keep[:, None], c[index] * keep


def _magnitude(A, c, lower, upper):
    """Largest ``|A x + c|`` per row over the box ``[lower, upper]``."""
    half = (np.asarray(upper) - np.asarray(lower)) / 2
    middle = (np.asarray(upper) + np.asarray(lower)) / 2
    return np.abs(A) @ half + np.abs(A @ middle + c)


def _check_layers(weights, biases, chained=True):
    if not weights:
        raise InvalidNetworkError("a network needs at least one layer")
    if len(weights) != len(biases):
        raise InvalidNetworkError(
            f"{len(weights)} weight matrices but {len(biases)} bias vectors"
        )
    for layer, (w, b) in enumerate(zip(weights, biases)):
        if w.ndim != 2:
            raise InvalidNetworkError(
                f"layer {layer}: weight matrix must be 2-D (out x in), got shape {w.shape}"
            )
        if b.shape != (w.shape[0],):
            raise InvalidNetworkError(
                f"layer {layer}: bias has shape {b.shape}, weight has {w.shape[0]} rows"
            )
        if chained and layer > 0 and w.shape[1] != weights[layer - 1].shape[0]:
            raise InvalidNetworkError(
                f"layer {layer}: weight of shape {w.shape} takes {w.shape[1]} inputs, "
                f"but layer {layer - 1} has {weights[layer - 1].shape[0]} outputs"
            )
        for name, array in (("weight", w), ("bias", b)):
            bad = ~np.isfinite(array)
            if bad.any():
                where = tuple(int(i) for i in np.argwhere(bad)[0])
                raise InvalidNetworkError(
                    f"layer {layer}: {name} has a non-finite entry {array[where]} at {where}"
                )
    if weights[0].shape[1] == 0:
        raise InvalidNetworkError("the network has input dimension 0")


def _check_denormals(weights, biases):
    tiny = np.finfo(np.float64).tiny
    for layer, (w, b) in enumerate(zip(weights, biases)):
        for name, array in (("weight", w), ("bias", b)):
            denormal = (array != 0) & (np.abs(array) < tiny)
            if denormal.any():
                where = tuple(int(i) for i in np.argwhere(denormal)[0])
                raise NumericalRangeError(
                    f"layer {layer}: {name} has a denormal entry {array[where]:.3g} at "
                    f"{where} (below {tiny:.3g}, float64 arithmetic on it is not exact); "
                    "set it to zero, or pass allow_extreme_numerics=True "
                    "(--allow-extreme-numerics) to proceed anyway")


def from_affine_steps(steps, input_dim, *, allow_extreme_numerics=False):
    """Network from a sequence of ``("affine", W, b)`` and ``("relu",)`` steps.

    Affine steps between two ReLUs are composed; a missing affine step (a ReLU
    right after the input or another ReLU, or none at the end) becomes the
    identity. Used by the torch, scikit-learn and ONNX loaders;
    ``allow_extreme_numerics`` is passed to :class:`Network`.
    """
    weights, biases = [], []
    W, b, width = None, None, input_dim  # None: the identity, not built unless needed
    for step in steps:
        if step[0] == "affine":
            W, b = (step[1], step[2]) if W is None else (step[1] @ W, step[1] @ b + step[2])
            width = W.shape[0]
        else:
            weights.append(np.eye(width) if W is None else W)
            biases.append(np.zeros(width) if W is None else b)
            W = b = None
    weights.append(np.eye(width) if W is None else W)
    biases.append(np.zeros(width) if W is None else b)
    return Network(weights, biases, allow_extreme_numerics=allow_extreme_numerics)


def network_fingerprint(network):
    """SHA-256 of the whole network: a format tag, then per layer a header (index, kind,
    activation, shapes, dtype) and the little-endian float64 bytes of its weights and
    biases, and for layers that are not plain ReLU (or the final affine) layers their unit
    codes, kept entries and windows: shapes, layer kinds and every value. Ties
    certificates, saved complexes and checkpoints to one network.

    Examples
    --------
    >>> a = Network([[[1.0]], [[2.0]]], [[0.0], [0.0]])
    >>> b = Network([[[1.0]], [[2.5]]], [[0.0], [0.0]])
    >>> same, other = network_fingerprint(a), network_fingerprint(b)
    >>> same == network_fingerprint(a), same == other
    (True, False)
    """
    digest = hashlib.sha256(b"polyrelu-network-fingerprint/2\n")
    last = len(network.layers) - 1
    for i, layer in enumerate(network.layers):
        plain = layer.is_affine if i == last else layer.is_relu
        header = {"layer": i, "kind": "affine",
                  "activation": ("identity" if i == last else "relu") if plain else "units",
                  "weight_shape": list(layer.weight.shape), "bias_shape": list(layer.bias.shape),
                  "dtype": "<f8"}
        if not plain:  # ReLU/linear codes, kept entries and windows (a header field older
            # fingerprints lack, so a ReLU network's fingerprint is unchanged)
            header.update(units_shape=list(layer.units.shape), keep_shape=list(layer.keep.shape),
                          windows_shape=list(layer.windows.shape), index_dtype="<i8")
        digest.update(json.dumps(header, sort_keys=True).encode() + b"\n")
        for array in (layer.weight, layer.bias):
            digest.update(np.ascontiguousarray(array, dtype="<f8").tobytes())
        if not plain:
            for array in (layer.units, layer.keep, layer.windows):
                digest.update(np.ascontiguousarray(array, dtype="<i8").tobytes())
    return digest.hexdigest()
