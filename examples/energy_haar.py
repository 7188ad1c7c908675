"""Energy decay over depth in a Haar filter-bank network (Wiatowski, Grohs, Boelcskei).

Each layer convolves the propagated signal with the Haar high pass [1/2, -1/2] and
takes the modulus |z| = ReLU(z) + ReLU(-z); the Haar low pass [1/2, 1/2] is the output
atom. The pair is a Parseval bank (frame bounds A = B = 1, from the DFT), so
||x||^2 = sum_{n<N} ||low * U_n||^2 + W_N(x) for every depth N: what is not yet output
is still propagating. The plot shows W_n / ||x||^2 for signals of length 64; the
right panel repeats it with ReLU instead of the modulus, which discards energy.
The energies are computed by FFT and cross-checked against the same extractor built
as a polyrelu Network of ReLU layers (exact dense circulant layers).

Run: python examples/energy_haar.py  (writes examples/out/energy_haar.png)
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from polyrelu.analysis.energy import plot_energy, propagation_energies  # noqa: E402
from polyrelu.analysis.filterbanks import filter_bank_network, frame_bounds, haar_filters  # noqa: E402

M, DEPTH, EPS = 64, 8, 0.01


def signals():
    m = np.arange(M)
    rng = np.random.default_rng(0)
    return {
        "white noise": rng.normal(size=M),
        "slow cosine (k=2)": np.cos(2 * np.pi * 2 * m / M) + 0.1,
        "step": (m >= M // 2).astype(float) - 0.3,
        "fast cosine (k=24)": np.cos(2 * np.pi * 24 * m / M),
    }


def main():
    low, high = haar_filters()
    print(f"Haar frame bounds on length {M}: A, B = {frame_bounds([low, high], M)}")
    network = filter_bank_network([high], M, DEPTH, output_filter=low)
    print(f"as a polyrelu network: {network} with {network.num_hidden} hidden neurons")
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for color, (name, x) in zip(("C0", "C1", "C2", "C3"), signals().items()):
        report = propagation_energies([high], x, DEPTH, output_filter=low)
        check = ((network.forward(x)[0] ** 2).sum() - x @ x) / (x @ x)
        identity = max(abs(report.kept(N) + report.propagated[N] - x @ x) / (x @ x)
                       for N in range(DEPTH + 1))
        print(f"{name:>20}: layers for 1 - {EPS} of the energy: {report.layers_needed(EPS)}; "
              f"energy identity error {identity:.1e}; network ||Phi(x)||^2 vs ||x||^2 "
              f"{check:.1e}")
        plot_energy(report, ax=left, label=name, color=color)
        relu = propagation_energies([high], x, DEPTH, nonlinearity="relu")
        right.semilogy(np.arange(DEPTH + 1), relu.propagated / (x @ x), "o-", color=color,
                       label=f"{name}: propagated")
        right.semilogy(np.arange(1, DEPTH + 1), relu.discarded / (x @ x), "x:", color=color,
                       markersize=9, label=f"{name}: discarded by ReLU")
    left.set_title("modulus: energy W_n still propagating (Parseval Haar bank)")
    left.axhline(EPS, color="grey", lw=0.8)
    left.set_ylim(1e-6, 2)
    right.set_title("ReLU instead: energy propagated and discarded per layer")
    right.set_xlabel("layer n")
    for ax in (left, right):
        ax.legend(fontsize=7, ncol=1)
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    fig.savefig(out / "energy_haar.png", dpi=110)
    print(f"wrote {out / 'energy_haar.png'}")


if __name__ == "__main__":
    main()
