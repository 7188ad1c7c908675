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

from ..errors import InvalidNetworkError, NumericalRangeError

__all__ = ["Network", "LocalAffineMaps", "from_affine_steps", "network_fingerprint",
           "MAX_PARAMETERS"]

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
    """A feed-forward ReLU network: affine layers with ReLU between them.

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
        if not allow_extreme_numerics:
            _check_denormals(weights, biases)
        self.allow_extreme_numerics = bool(allow_extreme_numerics)
        for array in weights + biases:
            array.setflags(write=False)
        self._weights = tuple(weights)
        self._biases = tuple(biases)
        sizes = [w.shape[0] for w in weights[:-1]]
        self._offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])

    # -- shape -----------------------------------------------------------------
    @property
    def weights(self):
        """Tuple of weight matrices, ``weights[l]`` of shape (out_l, in_l)."""
        return self._weights

    @property
    def biases(self):
        """Tuple of bias vectors, ``biases[l]`` of shape (out_l,)."""
        return self._biases

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
        """Widths of the hidden (ReLU) layers, a tuple."""
        return tuple(w.shape[0] for w in self._weights[:-1])

    @property
    def num_hidden(self):
        """Total number N of hidden neurons."""
        return int(self._offsets[-1])

    def neuron_layer(self):
        """Array of shape (N,): the hidden layer of each global neuron index."""
        return np.repeat(np.arange(len(self.hidden_sizes)), self.hidden_sizes)

    def neuron_name(self, index):
        """Human-readable name ``"layer L, unit U"`` of a global neuron index."""
        layer = int(np.searchsorted(self._offsets, index, side="right") - 1)
        return f"layer {layer}, unit {index - int(self._offsets[layer])}"

    # -- evaluation ------------------------------------------------------------
    def forward(self, x):
        """Network output at points ``x`` of shape (n, d) (or (d,)); returns (n, m)."""
        h = self._as_points(x)
        for w, b in zip(self._weights[:-1], self._biases[:-1]):
            h = np.maximum(h @ w.T + b, 0.0)
        return h @ self._weights[-1].T + self._biases[-1]

    def preactivations(self, x):
        """Hidden pre-activations at points ``x``: array (n, N), layer by layer."""
        h = self._as_points(x)
        parts = []
        for w, b in zip(self._weights[:-1], self._biases[:-1]):
            z = h @ w.T + b
            parts.append(z)
            h = np.maximum(z, 0.0)
        if not parts:
            return np.zeros((h.shape[0], 0))
        return np.concatenate(parts, axis=1)

    def activation_pattern(self, x):
        """Boolean array (n, N): neuron j is active at x when its pre-activation is > 0."""
        return self.preactivations(x) > 0.0

    def layer_masks(self, pattern):
        """The 0/1 float masks of ``pattern`` per hidden layer, and ones for the output layer
        (one array per weight matrix: layer l computes ``mask_l * (W_l h + b_l)``).

        Examples
        --------
        >>> net = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
        >>> [m.tolist() for m in net.layer_masks([True, False])]
        [[1.0, 0.0], [1.0]]
        """
        pattern = np.asarray(pattern, dtype=bool)
        masks = [pattern[self._offsets[i]:self._offsets[i + 1]].astype(float)
                 for i in range(len(self._weights) - 1)]
        return masks + [np.ones(self.output_dim)]

    def affine_maps(self, pattern):
        """The affine maps computed under a fixed activation pattern.

        Parameters
        ----------
        pattern : array_like of bool, shape (N,)

        Returns
        -------
        LocalAffineMaps
            Pre-activation maps of every hidden neuron and the output map,
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
        for layer, (w, b) in enumerate(zip(self._weights, self._biases)):
            A, c = w @ A, w @ c + b
            if layer == len(self._weights) - 1:
                break
            pre_A.append(A)
            pre_c.append(c)
            mask = pattern[self._offsets[layer]:self._offsets[layer + 1]]
            A = A * mask[:, None]
            c = c * mask
        stack_A = np.concatenate(pre_A) if pre_A else np.zeros((0, d))
        stack_c = np.concatenate(pre_c) if pre_c else np.zeros(0)
        return LocalAffineMaps(stack_A, stack_c, A, c)

    def feature_map(self, pattern, layer=None):
        """``(A, c)`` with ``A @ x + c`` the outputs (``layer=None``) or hidden layer
        ``layer``'s post-ReLU features, wherever the activation pattern is ``pattern``.

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
        rows = slice(self._offsets[layer], self._offsets[layer + 1])
        mask = np.asarray(pattern, dtype=bool)[rows]
        return maps.pre_A[rows] * mask[:, None], maps.pre_c[rows] * mask

    def zero_neurons(self, maps, zero_tol, lower, upper):
        """Neurons whose pre-activation map is identically zero on a box.

        Returns a boolean array (N,): True where the map in ``maps`` has
        magnitude at most ``zero_tol[j]`` everywhere on ``[lower, upper]``.
        Such a neuron gives the same network in both states; polyrelu calls it
        inactive (active means pre-activation > 0).
        """
        half = (np.asarray(upper) - np.asarray(lower)) / 2
        middle = (np.asarray(upper) + np.asarray(lower)) / 2
        magnitude = np.abs(maps.pre_A) @ half + np.abs(maps.pre_A @ middle + maps.pre_c)
        return magnitude <= zero_tol

    def canonical_pattern(self, pattern, zero_tol, lower, upper):
        """Canonical form of a pattern (zero neurons made inactive) and its maps.

        Returns
        -------
        (ndarray of bool, LocalAffineMaps, ndarray of bool)
            The canonical pattern, its affine maps, and the zero-neuron mask
            (see :meth:`zero_neurons`).
        """
        maps = self.affine_maps(pattern)
        zero = self.zero_neurons(maps, zero_tol, lower, upper)
        return np.asarray(pattern, dtype=bool) & ~zero, maps, zero

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
        return f"Network({'-'.join(map(str, sizes))})"


def _check_layers(weights, biases):
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
        if layer > 0 and w.shape[1] != weights[layer - 1].shape[0]:
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
    biases: shapes, layer kinds and every value. Ties certificates, saved complexes and
    checkpoints to one network.

    Examples
    --------
    >>> a = Network([[[1.0]], [[2.0]]], [[0.0], [0.0]])
    >>> b = Network([[[1.0]], [[2.5]]], [[0.0], [0.0]])
    >>> same, other = network_fingerprint(a), network_fingerprint(b)
    >>> same == network_fingerprint(a), same == other
    (True, False)
    """
    digest = hashlib.sha256(b"polyrelu-network-fingerprint/2\n")
    last = len(network.weights) - 1
    for i, (w, b) in enumerate(zip(network.weights, network.biases)):
        header = {"layer": i, "kind": "affine", "activation": "identity" if i == last else "relu",
                  "weight_shape": list(np.shape(w)), "bias_shape": list(np.shape(b)),
                  "dtype": "<f8"}
        digest.update(json.dumps(header, sort_keys=True).encode() + b"\n")
        for array in (w, b):
            digest.update(np.ascontiguousarray(array, dtype="<f8").tobytes())
    return digest.hexdigest()
