"""Jacobian benchmark: morula's batched backward sweep against its row-by-row sweep, its
forward-mode Jacobian (one run on dual arrays, and one forward pass per column), and against JAX (``jax.jacrev`` under ``jit``), ``torch.func.jacrev`` (torch 2.13.0 CPU) and HIPS
autograd's ``jacobian``, side by side in one run (peers are used when installed).

Run: python benchmarks/bench_jacobian.py

f(x) = tanh(W2 @ tanh(W1 @ x + b1) + b2) for x of n = 100, hidden 200, m outputs (m = 50, 500):
a small network whose Jacobian has many rows. Every result is checked against morula's before
it is timed. Reports times and the ratio morula / other (below 1: morula is faster). Nothing
here is a test.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
import morula as mo  # noqa: E402
from morula import batched_jacobian, dual_arrays  # noqa: E402
from timing import best_time  # noqa: E402


def make(n, hidden, m, rng):
    W1 = rng.standard_normal((hidden, n)) / np.sqrt(n)
    b1 = rng.standard_normal(hidden)
    W2 = rng.standard_normal((m, hidden)) / np.sqrt(hidden)
    b2 = rng.standard_normal(m)

    def f(x):
        return np.tanh(W2 @ np.tanh(W1 @ x + b1) + b2)
    return f, (W1, b1, W2, b2)


def row_by_row(f):
    def jac(x):
        real = batched_jacobian.rows
        batched_jacobian.rows = lambda *a: None
        try:
            return mo.jacobian(f)(x)
        finally:
            batched_jacobian.rows = real
    return jac


def columns(f):
    """mo.jacfwd without dual arrays: one forward pass per input element."""
    def jac(x):
        saved = list(dual_arrays.DUALS)
        dual_arrays.DUALS.clear()
        try:
            return mo.jacfwd(f)(x)
        finally:
            dual_arrays.DUALS.extend(saved)
    return jac


def peers(params):
    W1, b1, W2, b2 = params
    out = {}
    try:
        import jax
        import jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
        P = [jnp.asarray(p) for p in params]

        def fj(x):
            return jnp.tanh(P[2] @ jnp.tanh(P[0] @ x + P[1]) + P[3])
        jj = jax.jit(jax.jacrev(fj))
        out["jax jacrev (jit)"] = lambda x: np.asarray(jj(jnp.asarray(x)))
    except ImportError:
        pass
    try:
        import torch
        from torch.func import jacrev
        T = [torch.from_numpy(p) for p in params]

        def ft(x):
            return torch.tanh(T[2] @ torch.tanh(T[0] @ x + T[1]) + T[3])
        out["torch.func.jacrev"] = lambda x: jacrev(ft)(torch.from_numpy(x)).numpy()
    except ImportError:
        pass
    try:
        import autograd
        import autograd.numpy as anp

        def fa(x):
            return anp.tanh(anp.dot(W2, anp.tanh(anp.dot(W1, x) + b1)) + b2)
        out["autograd jacobian"] = autograd.jacobian(fa)
    except ImportError:
        pass
    return out


def main():
    rng = np.random.default_rng(0)
    rows = []
    for m in (50, 500):
        f, params = make(100, 200, m, rng)
        x = rng.standard_normal(100)
        J = mo.jacobian(f)(x)
        contenders = {"morula (batched)": mo.jacobian(f), "morula (row by row)": row_by_row(f),
                      "morula jacfwd (duals)": mo.jacfwd(f), "morula jacfwd (columns)": columns(f)}
        contenders.update(peers(params))
        times = {}
        for name, jac in contenders.items():
            got = jac(x)
            if not np.allclose(got, J, rtol=1e-8, atol=1e-10):
                raise AssertionError(f"{name} disagrees with morula at m={m}")
            times[name] = best_time(lambda: jac(x))
        base = times["morula (batched)"]
        for name, t in times.items():
            ratio = "" if name == "morula (batched)" else f"{base / t:10.2f}x"
            rows.append((f"jacobian m={m}", name, t, ratio))
    print(f"{'case':<16} {'library':<24} {'time':>11}   morula (batched) / library")
    for case, name, t, ratio in rows:
        print(f"{case:<16} {name:<24} {t * 1e3:8.2f} ms   {ratio}")


if __name__ == "__main__":
    main()
