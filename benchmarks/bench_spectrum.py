"""Exact spectrum along a closed curve vs the FFT of N samples, at equal accuracy.

A random 8-64-64-4 ReLU network and an ellipse through its input space. polyrelu
computes the DC and first 16 harmonics of all outputs exactly (pieces, then closed-form
integrals). The baseline samples the outputs at N equally spaced points (one batched
forward pass) and takes an FFT; its error (largest coefficient error against the
exact values) falls like 1/N^2 because of the kinks, so N doubles until it reaches
each target accuracy. Each method runs in its own process to report its peak memory
(ru_maxrss).

Run: python benchmarks/bench_spectrum.py
"""

import multiprocessing
import resource
import time

import numpy as np

from polyrelu import ClosedCurve, Network, path_pieces, path_spectrum

HARMONICS = 16
TARGETS = (1e-4, 1e-6, 1e-8, 1e-10)  # 1e-12 needs N = 2^21: 34 s, 3.3 GB


def _problem():
    rng = np.random.default_rng(0)
    sizes = (8, 64, 64, 4)
    weights = [rng.normal(size=(o, i)) / np.sqrt(i) for i, o in zip(sizes, sizes[1:])]
    biases = [rng.normal(size=o) * 0.3 for o in sizes[1:]]
    curve = ClosedCurve(rng.normal(size=8) * 0.2, rng.normal(size=8), rng.normal(size=8))
    return Network(weights, biases), curve


def _exact(queue):
    net, curve = _problem()
    start = time.perf_counter()
    pieces = path_pieces(net, curve)
    spectrum = path_spectrum(net, curve, HARMONICS, pieces=pieces)
    seconds = time.perf_counter() - start
    coefficients = np.vstack([spectrum.dc, (spectrum.a - 1j * spectrum.b) / 2])
    queue.put((seconds, len(pieces), coefficients, _peak_mb()))


def _fft(queue, samples, exact):
    net, curve = _problem()
    start = time.perf_counter()
    t = 2 * np.pi * np.arange(samples) / samples
    values = net.forward(curve.points(t))
    coefficients = np.fft.rfft(values, axis=0)[:HARMONICS + 1] / samples
    seconds = time.perf_counter() - start
    queue.put((seconds, float(np.abs(coefficients - exact).max()), _peak_mb()))


def _peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run(target, *args):
    queue = multiprocessing.get_context("fork").Queue()
    process = multiprocessing.get_context("fork").Process(target=target, args=(queue, *args))
    process.start()
    result = queue.get()
    process.join()
    return result


def main():
    seconds, pieces, exact, peak = _run(_exact)
    print(f"exact (polyrelu): {pieces} pieces, {seconds:.4f} s, peak {peak:.0f} MB, "
          f"{pieces / seconds:.0f} pieces/s")
    print(f"{'target':>8} {'samples N':>10} {'error':>9} {'fft s':>8} {'peak MB':>8} "
          f"{'fft/exact time':>15}")
    samples = 256
    for target in TARGETS:
        while True:
            fft_seconds, error, fft_peak = _run(_fft, samples, exact)
            if error <= target or samples >= 1 << 24:
                break
            samples *= 2
        print(f"{target:>8.0e} {samples:>10d} {error:>9.1e} {fft_seconds:>8.3f} "
              f"{fft_peak:>8.0f} {fft_seconds / seconds:>15.1f}")


if __name__ == "__main__":
    main()
