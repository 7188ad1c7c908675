"""The DC paper's validation, exactly: ReLU of four summed tones vs its Taylor model.

Kechris et al. ("DC is all you need", 2024) model ReLU's spectrum with a truncated Taylor
expansion. Here the input is x(t) = cos(2 pi 5 t) + cos(2 pi 10 t) + cos(2 pi 20 t) +
cos(2 pi 40 t) (unit amplitudes: our choice), fed to a one-neuron ReLU network as the
closed curve of period 0.2 s (harmonics 1, 2, 4, 8 of 5 Hz). polyrelu splits the period
at the exact zeros of x(t) and integrates each piece in closed form, giving the exact DC
and harmonics; the Taylor model's spectrum with N = 1..50 terms is compared with it.
A dense FFT of sampled ReLU(x(t)) checks the exact values.

Run: python examples/dc_tones.py  (writes examples/out/dc_tones.png)
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from polyrelu import ClosedCurve, Network, path_pieces, path_spectrum  # noqa: E402
from polyrelu.analysis.spectrum import taylor_relu_spectrum  # noqa: E402

BASE_HZ = 5
TONES = np.array([1, 2, 4, 8])          # 5, 10, 20, 40 Hz
AMPLITUDES = np.ones(4)
HARMONICS = 48                          # up to 240 Hz
TERMS = np.arange(1, 51)


def main():
    relu = Network([[[1.0]], [[1.0]]], [[0.0], [0.0]])
    U = np.zeros((1, TONES.max()))
    U[0, TONES - 1] = AMPLITUDES
    curve = ClosedCurve([0.0], U, np.zeros_like(U))
    pieces = path_pieces(relu, curve)
    exact = path_spectrum(relu, curve, HARMONICS, pieces=pieces)
    exact_c = np.r_[exact.dc, (exact.a[:, 0] - 1j * exact.b[:, 0]) / 2]

    samples = 1 << 16
    t = 2 * np.pi * np.arange(samples) / samples
    fft = np.fft.rfft(relu.forward(curve.points(t))[:, 0]) / samples
    print(f"pieces of one period: {len(pieces)} (zeros of x(t))")
    print(f"exact DC: {exact.dc[0]:.15f}; |exact - FFT of {samples} samples| = "
          f"{np.abs(exact_c - fft[:HARMONICS + 1]).max():.2e}")

    dc_error, spectrum_error, models = [], [], {}
    for N in TERMS:
        model = taylor_relu_spectrum(AMPLITUDES, TONES, N, HARMONICS)
        model_c = np.r_[model.dc, (model.a[:, 0] - 1j * model.b[:, 0]) / 2]
        dc_error.append(abs(model.dc[0] - exact.dc[0]))
        spectrum_error.append(np.linalg.norm(model_c - exact_c) / np.linalg.norm(exact_c))
        models[N] = model
    for N in (1, 2, 5, 10, 20, 50):
        print(f"Taylor N = {N:2d}: DC {models[N].dc[0]:.6f}  DC error {dc_error[N - 1]:.2e}  "
              f"relative spectrum error {spectrum_error[N - 1]:.2e}")

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    hz = BASE_HZ * np.arange(HARMONICS + 1)
    left.stem(hz, np.abs(np.r_[exact.dc, exact.amplitude[:, 0]]), linefmt="k-",
              markerfmt="ko", basefmt=" ", label="exact (polyrelu)")
    for N, style in ((1, "C3x"), (5, "C1+"), (50, "C0.")):
        amplitude = np.abs(np.r_[models[N].dc, models[N].amplitude[:, 0]])
        left.plot(hz, amplitude, style, markersize=7, label=f"Taylor model, N = {N}")
    left.set_yscale("log")
    left.set_ylim(1e-4, 2)
    left.set_xlabel("frequency (Hz)")
    left.set_ylabel("amplitude (DC: mean)")
    left.set_title("ReLU of 5 + 10 + 20 + 40 Hz tones")
    left.legend(fontsize=8)
    right.loglog(TERMS, dc_error, "o-", markersize=3, label="|DC error|")
    right.loglog(TERMS, spectrum_error, "s-", markersize=3,
                 label=f"relative spectrum error (0-{hz[-1]} Hz)")
    right.set_xlabel("Taylor terms N")
    right.set_ylabel("error vs exact")
    right.set_title("Taylor model error vs number of terms")
    right.legend(fontsize=8)
    right.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    fig.savefig(out / "dc_tones.png", dpi=110)
    print(f"wrote {out / 'dc_tones.png'}")


if __name__ == "__main__":
    main()
