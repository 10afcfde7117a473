"""Mutation benchmark: in-place writes cost O(1) each, and the in-place heat equation
against PyTorch (in-place tensor ops) and JAX (out-of-place ``.at[]``), in one run.

Run: python benchmarks/bench_mutation.py   (torch/jax are used when installed).
Reports times and ratios; nothing here is a test.
"""

import importlib.util
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
import morula as mo  # noqa: E402
from timing import best_time  # noqa: E402


# --------------------------------------------------------------------------- fill loop

def fill(x):
    n = x.shape[0]
    out = np.zeros(n)
    for i in range(n):
        out[i] = x[i] * x[i]
    return out.sum()


def bench_fill():
    print("fill loop  out = np.zeros(n); for i: out[i] = x[i] * x[i]   (gradient, forward + backward)")
    print(f"{'n':>8s} {'total':>10s} {'per write':>12s}")
    for n in (1_000, 10_000, 100_000):
        x = np.linspace(0.0, 1.0, n)
        g = mo.grad(fill)
        g(x[:10])
        t = best_time(lambda: g(x), repeat=2)
        print(f"{n:8d} {t * 1e3:8.1f}ms {t / n * 1e6:10.2f}us")


# --------------------------------------------------------------------------- heat equation

N, STEPS, DT_DX2 = 256, 500, 0.2


def heat_in_place(u0, k):
    u = u0.copy()
    for _ in range(STEPS):
        u[1:-1] += k * DT_DX2 * (u[2:] - 2 * u[1:-1] + u[:-2])
    return np.sum(u ** 2)


def bench_heat():
    rng = np.random.default_rng(0)
    u0 = np.sin(np.linspace(0, np.pi, N)) + 0.1 * rng.standard_normal(N)
    k = 0.9
    rows = {}
    rows["plain NumPy (no gradient)"] = best_time(lambda: heat_in_place(u0, k))
    g = mo.grad(heat_in_place, argnums=(0, 1))
    g(u0, k)
    rows["morula (in place)"] = best_time(lambda: g(u0, k))
    if importlib.util.find_spec("torch"):
        import torch
        torch.set_num_threads(1)

        def torch_grad():
            tu0 = torch.tensor(u0, requires_grad=True)
            tk = torch.tensor(k, dtype=torch.float64, requires_grad=True)
            u = tu0.clone()
            for _ in range(STEPS):
                u[1:-1] += tk * DT_DX2 * (u[2:] - 2 * u[1:-1] + u[:-2])
            loss = torch.sum(u ** 2)
            return torch.autograd.grad(loss, (tu0, tk))
        torch_grad()
        rows["PyTorch (in-place tensors)"] = best_time(torch_grad)
    if importlib.util.find_spec("jax"):
        import jax
        import jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)

        def jax_loss(u0, k):
            def step(u, _):
                return u.at[1:-1].add(k * DT_DX2 * (u[2:] - 2 * u[1:-1] + u[:-2])), None
            u, _ = jax.lax.scan(step, u0, None, length=STEPS)
            return jnp.sum(u ** 2)
        jg = jax.jit(jax.grad(jax_loss, argnums=(0, 1)))
        ju0 = jnp.asarray(u0)
        jax.block_until_ready(jg(ju0, k))
        rows["JAX (.at[] + scan, jit)"] = best_time(lambda: jax.block_until_ready(jg(ju0, k)))

        def jax_loss_loop(u0, k):
            u = u0
            for _ in range(STEPS):
                u = u.at[1:-1].add(k * DT_DX2 * (u[2:] - 2 * u[1:-1] + u[:-2]))
            return jnp.sum(u ** 2)
        jg_eager = jax.grad(jax_loss_loop, argnums=(0, 1))
        jg_eager(ju0, k)
        rows["JAX (.at[] Python loop, no jit)"] = best_time(lambda: jg_eager(ju0, k), repeat=1)
    ref = rows["morula (in place)"]
    print(f"\nheat equation in place, N={N}, {STEPS} steps, gradient wrt u0 and k")
    print(f"{'system':36s} {'time':>10s} {'vs morula':>10s}")
    for name, t in rows.items():
        print(f"{name:36s} {t * 1e3:8.2f}ms {t / ref:9.2f}x")


if __name__ == "__main__":
    bench_fill()
    bench_heat()
