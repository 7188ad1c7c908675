"""Exact region counts over training: a 2-16-16-2 MLP learns scikit-learn's two moons
while polyrelu.analysis.complexity.RegionCounter records, after every epoch, the exact
number of regions on the data's box, on the slice through three training points and in
l_inf balls of radius 0.1 around five training points (local complexity). Each epoch's
model is saved as a checkpoint (.npz, a safe format) and the curves are drawn.

    python examples/training_regions/train.py [OUT_DIR]

Needs torch and scikit-learn (``pip install torch scikit-learn``); about 10 s.
"""

import sys
from pathlib import Path


def train(out_dir, epochs=12, seed=0):
    """Train, count after every epoch, save checkpoints; returns (counter, checkpoint paths)."""
    import torch
    from sklearn.datasets import make_moons

    from polyrelu.analysis.complexity import RegionCounter
    from polyrelu.network import from_torch, save_npz

    torch.manual_seed(seed)
    x, y = make_moons(400, noise=0.1, random_state=seed)
    inputs, labels = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    model = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(),
                                torch.nn.Linear(16, 16), torch.nn.ReLU(),
                                torch.nn.Linear(16, 2))
    optimiser = torch.optim.Adam(model.parameters(), lr=0.02)
    counter = RegionCounter(box=([-2.0, -1.5], [3.0, 2.0]), slices=[x[:3]], centres=x[3:8],
                            radius=0.1)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for epoch in range(epochs):
        for batch in torch.randperm(len(x)).split(50):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(model(inputs[batch]), labels[batch]).backward()
            optimiser.step()
        record = counter(model, epoch=epoch)
        paths.append(out_dir / f"epoch_{epoch:02d}.npz")
        save_npz(from_torch(model), paths[-1])
        print(f"epoch {epoch:2d}: box {record['box']:4d}  slice {record['slice_0']:4d}  "
              f"balls {record['balls']} (mean {record['ball_mean']:.1f})")
    return counter, paths


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("training_regions")
    counter, _ = train(out)
    counter.plot(out / "counts.png")
    counter.frame().to_csv(out / "counts.csv", index=False)
    print(f"curves: {out / 'counts.png'}, table: {out / 'counts.csv'}")
