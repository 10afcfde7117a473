"""Robust polynomial fitting by gradient descent, with loops and branches in the loss.

We generate noisy samples of a cubic, corrupt a few of them with large
outliers, and recover the cubic's coefficients by minimising a Huber loss
with gradient descent. The model and the loss are written the way one would
write them without any autodiff library in mind:

* ``cubic`` builds the polynomial with a Python ``for`` loop over the
  coefficients;
* ``huber_loss`` walks over the residuals one by one and takes an ``if``
  branch per residual: quadratic for small residuals, linear for large ones
  (so outliers pull on the fit with a bounded force).

``mo.grad(huber_loss)`` differentiates through both loops and every branch
decision. For comparison, an ordinary least-squares fit (``np.polyfit``) is
dragged away by the outliers; the Huber fit is not.

Run it with ``python examples/02_polynomial_fit.py`` (or ``./run_examples.sh``).
"""

import os
from pathlib import Path

import numpy as np

import morula as mo

TRUE_COEFFS = np.array([0.5, -1.0, -2.0, 1.5])     # c0 + c1 x + c2 x^2 + c3 x^3


def cubic(coeffs, x):
    """The polynomial sum_k coeffs[k] * x**k, term by term."""
    y = np.zeros_like(x)
    for k, c in enumerate(coeffs):
        y = y + c * x ** k
    return y


def huber_loss(coeffs, x, y, delta=0.1):
    """Mean Huber loss of the residuals: quadratic within ``delta``, linear outside."""
    residuals = cubic(coeffs, x) - y
    total = 0.0
    for r in residuals:
        if abs(r) <= delta:
            total = total + 0.5 * r * r
        else:
            total = total + delta * (abs(r) - 0.5 * delta)
    return total / len(residuals)


def make_data(n, n_outliers, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-1.0, 1.0, n))
    y = cubic(TRUE_COEFFS, x) + noise * rng.standard_normal(n)
    bad = rng.choice(n, n_outliers, replace=False)
    y[bad] += rng.uniform(1.0, 3.0, n_outliers)           # one-sided spikes
    return x, y, bad


def fit(x, y, steps, lr=0.5, momentum=0.9):
    """Gradient descent with (heavy-ball) momentum from all-zero coefficients."""
    loss_and_grad = mo.value_and_grad(huber_loss)
    coeffs = np.zeros(len(TRUE_COEFFS))
    velocity = np.zeros_like(coeffs)
    history = []
    for step in range(steps):
        loss, g = loss_and_grad(coeffs, x, y)
        velocity = momentum * velocity - lr * g
        coeffs = coeffs + velocity
        history.append(loss)
    return coeffs, history


def _output_dir():
    return Path(os.environ.get("MORULA_EXAMPLES_OUTPUT", Path(__file__).resolve().parent / "output"))


def _plot(outdir, x, y, bad, coeffs, lstsq, history):
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    grid = np.linspace(-1, 1, 200)
    inlier = np.ones(len(x), bool)
    inlier[bad] = False
    left.plot(x[inlier], y[inlier], ".", color="0.5", label="data")
    left.plot(x[bad], y[bad], "rx", label="outliers")
    left.plot(grid, cubic(TRUE_COEFFS, grid), "k:", label="true cubic")
    left.plot(grid, cubic(lstsq, grid), label="least squares (np.polyfit)")
    left.plot(grid, cubic(coeffs, grid), label="Huber loss + mo.grad")
    left.legend(fontsize="small")
    left.set_title("Robust cubic fit")
    right.plot(history)
    right.set_xlabel("gradient-descent step")
    right.set_ylabel("Huber loss")
    right.set_title("Training loss")
    fig.tight_layout()
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / "02_polynomial_fit.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(quick=False, plot=True, outdir=None):
    """Fit the cubic; return the coefficient errors of the Huber and least-squares fits."""
    n, n_outliers, steps = (60, 6, 150) if quick else (200, 20, 300)
    x, y, bad = make_data(n, n_outliers)
    coeffs, history = fit(x, y, steps)
    lstsq = np.polyfit(x, y, 3)[::-1]                   # np.polyfit lists the highest power first
    huber_error = float(np.max(np.abs(coeffs - TRUE_COEFFS)))
    lstsq_error = float(np.max(np.abs(lstsq - TRUE_COEFFS)))

    print(f"{n} samples of a cubic with noise 0.05, {n_outliers} of them outliers; {steps} steps")
    print("            c0        c1        c2        c3")
    for name, c in [("true", TRUE_COEFFS), ("lstsq", lstsq), ("huber", coeffs)]:
        print(f"{name:7s}" + "".join(f"{v:+10.4f}" for v in c))
    print(f"final Huber loss {history[-1]:.5f} (started at {history[0]:.5f})")
    result = {
        "max_coef_error": huber_error,
        "lstsq_max_coef_error": lstsq_error,
        "final_loss": float(history[-1]),
        "initial_loss": float(history[0]),
        "steps": steps,
    }
    if plot:
        path = _plot(Path(outdir) if outdir is not None else _output_dir(), x, y, bad, coeffs, lstsq, history)
        if path is not None:
            print(f"plot: {path}")
    print(f"Huber fit recovers the coefficients to {huber_error:.3f} "
          f"(least squares with outliers: {lstsq_error:.3f})")
    return result


if __name__ == "__main__":
    main()
