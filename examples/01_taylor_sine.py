"""Differentiating a loop that prints and returns early: the Taylor-series sine.

This is the opening example of the ∂P paper (Innes et al., 2019, "A
Differentiable Programming System to Bridge Machine Learning and Scientific
Computing"). ``taylor_sin`` sums the series

    sin(x) = x - x^3/3! + x^5/5! - x^7/7! + ...

in a plain Python ``for`` loop, prints how many terms it needed, and leaves
the loop with an early ``return`` as soon as a term is negligible.
Nothing here is written for morula: ``x`` is an ordinary float inside the
function (so f-strings, ``abs`` and comparisons just work), and the loop runs
a different number of times for different ``x``. morula transforms the source
of ``taylor_sin`` once into a derivative program that records which way each
branch went and replays the loop backwards, so one derivative program serves
every input.

The derivative of the truncated series is the truncated cosine series, so
``mo.grad(taylor_sin)(x)`` should equal ``cos(x)`` to rounding error.

Run it with ``python examples/01_taylor_sine.py`` (or ``./run_examples.sh``).
``mo.source(taylor_sin)`` prints the derivative code morula generated.
"""

import math
import os
from pathlib import Path

import numpy as np

import morula as mo


def taylor_sin(x, tol=1e-17, verbose=True):
    """sin(x) by its Taylor series, returning as soon as a term drops below ``tol``."""
    total = x                               # the first term, x^1 / 1!
    term = x
    for i in range(3, 201, 2):              # the odd powers 3, 5, 7, ...
        term = -term * x * x / ((i - 1) * i)
        total = total + term
        if abs(term) < tol:
            if verbose:
                print(f"  taylor_sin({x:+.2f}): {i // 2 + 1} terms")
            return total                    # early return from inside the loop
    return total


def _output_dir():
    return Path(os.environ.get("MORULA_EXAMPLES_OUTPUT", Path(__file__).resolve().parent / "output"))


def _plot(outdir):
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dsin = mo.grad(taylor_sin)
    xs = np.linspace(-2 * np.pi, 2 * np.pi, 241)
    values = [taylor_sin(x, verbose=False) for x in xs]
    grads = [dsin(x, verbose=False) for x in xs]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    top.plot(xs, values, label="taylor_sin(x)")
    top.plot(xs, grads, label="mo.grad(taylor_sin)(x)")
    top.plot(xs, np.cos(xs), "k:", label="cos(x)")
    top.set_ylim(-1.2, 1.7)
    top.legend(loc="upper center", ncol=3, fontsize="small")
    top.set_title("A Taylor-series loop with an early return, differentiated by morula")
    errors = np.abs(np.array(grads) - np.cos(xs))
    bottom.semilogy(xs, np.maximum(errors, 1e-17), ".", ms=3)
    bottom.set_ylabel("|grad - cos(x)|  (0 shown as 1e-17)")
    bottom.set_xlabel("x")
    fig.tight_layout()
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / "01_taylor_sine.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(quick=False, plot=True, outdir=None):
    """Compare ``mo.grad(taylor_sin)`` with ``cos`` at several points; return the errors."""
    xs = [0.1, 0.5, 1.0, 2.0, -3.0] if quick else [0.0, 0.1, 0.5, 1.0, 2.0, -3.0, math.pi, 5.0, -7.5]
    dsin = mo.grad(taylor_sin)
    value_errors, grad_errors = [], []
    print("x          taylor_sin(x)          grad                   cos(x)                 |grad - cos|")
    for x in xs:
        value = taylor_sin(x, verbose=False)
        g = dsin(x)                         # prints the number of terms it took
        value_errors.append(abs(value - math.sin(x)))
        grad_errors.append(abs(g - math.cos(x)))
        print(f"{x:+8.4f}   {value:+.17f}   {g:+.17f}   {math.cos(x):+.17f}   {grad_errors[-1]:.1e}")
    code = mo.source(taylor_sin, file=None)
    print(f"mo.source(taylor_sin) is {len(code.splitlines())} lines of generated Python")
    result = {
        "max_value_error": max(value_errors),
        "max_grad_error": max(grad_errors),
        "points": len(xs),
    }
    if plot:
        path = _plot(Path(outdir) if outdir is not None else _output_dir())
        if path is not None:
            print(f"plot: {path}")
    print(f"grad(taylor_sin) matches cos(x) at {len(xs)} points: "
          f"max error {result['max_grad_error']:.1e}")
    return result


if __name__ == "__main__":
    main()
