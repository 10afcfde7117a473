"""Second-order benchmark: morula's Hessian and Hessian-vector product against JAX, torch.func and
HIPS autograd, side by side in one run (peers are used when installed: pip install -e .[bench]).

Run: python benchmarks/bench_hessian.py [--quick]

f(x) = sum(tanh(A @ x) ** 2) + x @ x
(a) the full Hessian for n = 200;
(b) a Hessian-vector product for n = 10,000 (A is 10,000 x 10,000, 800 MB in float64;
    --quick uses n = 2,000).
Every result is checked against morula's before it is timed. Reports times and the ratio
morula / peer (below 1: morula is faster). Nothing here is a test.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
import morula as mo  # noqa: E402
from timing import best_time  # noqa: E402


def make_f(A):
    def f(x):
        return np.sum(np.tanh(A @ x) ** 2) + x @ x
    return f


def peers(A):
    """name -> (hessian(x), hvp(x, v)) for each installed peer."""
    out = {}
    try:
        import jax
        import jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
        Aj = jnp.asarray(A)

        def fj(x):
            return jnp.sum(jnp.tanh(Aj @ x) ** 2) + x @ x
        hess = jax.jit(jax.hessian(fj))
        hvp = jax.jit(lambda x, v: jax.jvp(jax.grad(fj), (x,), (v,))[1])
        out["jax (jit)"] = (lambda x: np.asarray(hess(jnp.asarray(x))),
                            lambda x, v: np.asarray(hvp(jnp.asarray(x), jnp.asarray(v))))
    except ImportError:
        pass
    try:
        import torch
        from torch.func import grad, hessian, jvp
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        At = torch.from_numpy(A)

        def ft(x):
            return torch.sum(torch.tanh(At @ x) ** 2) + x @ x
        out["torch.func"] = (lambda x: hessian(ft)(torch.from_numpy(x)).numpy(),
                             lambda x, v: jvp(grad(ft), (torch.from_numpy(x),), (torch.from_numpy(v),))[1].numpy())
    except ImportError:
        pass
    try:
        import autograd
        import autograd.numpy as anp

        def fa(x):
            return anp.sum(anp.tanh(anp.dot(A, x)) ** 2) + anp.dot(x, x)
        hvp_a = autograd.hessian_tensor_product(fa)
        out["autograd"] = (lambda x: autograd.hessian(fa)(x), lambda x, v: hvp_a(x, v))
    except ImportError:
        pass
    return out


def main(quick=False):
    rng = np.random.default_rng(0)
    rows = []
    # (a) full Hessian, n = 200
    n = 200
    A = rng.standard_normal((n, n)) / np.sqrt(n)
    x = rng.standard_normal(n)
    f = make_f(A)
    H = mo.hessian(f)(x)
    t_mo = best_time(lambda: mo.hessian(f)(x), warmup=True)
    rows.append(("(a) Hessian n=200", "morula", t_mo, None))
    for name, (hess, _) in peers(A).items():
        np.testing.assert_allclose(hess(x), H, rtol=1e-8, atol=1e-10)
        rows.append(("(a) Hessian n=200", name, best_time(lambda: hess(x), warmup=True), t_mo))
    # (b) Hessian-vector product
    n = 2000 if quick else 10000
    A = rng.standard_normal((n, n)) / np.sqrt(n)
    x, v = rng.standard_normal(n), rng.standard_normal(n)
    f = make_f(A)
    hv = mo.hvp(f, (x,), (v,))
    t_mo = best_time(lambda: mo.hvp(f, (x,), (v,)), warmup=True)
    rows.append((f"(b) HVP n={n}", "morula", t_mo, None))
    for name, (_, hvp) in peers(A).items():
        np.testing.assert_allclose(hvp(x, v), hv, rtol=1e-8, atol=1e-8)
        rows.append((f"(b) HVP n={n}", name, best_time(lambda: hvp(x, v), warmup=True), t_mo))
    print(f"{'case':<20} {'library':<12} {'time':>10}   morula / library")
    for case, name, t, t_mo in rows:
        ratio = "" if t_mo is None else f"{t_mo / t:8.2f}x"
        print(f"{case:<20} {name:<12} {t * 1e3:8.2f} ms   {ratio}")


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
