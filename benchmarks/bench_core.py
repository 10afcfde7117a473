"""Core reverse-mode benchmark: morula against the plain function, HIPS autograd and PyTorch.

Run: python benchmarks/bench_core.py   (autograd/torch are used when installed:
pip install -e .[bench]). Reports times and ratios in one run; nothing here is
a test.

(a) RK4 integration of Lotka-Volterra on Python floats, 1000 steps, gradient
    with respect to the 4 parameters.
(b) MLP 784-512-512-10, float32, batch 128, softmax cross-entropy, gradient
    with respect to all weights.
(c) First-call latency (transform + compile) of a 50-line function.
"""

import importlib.util
import os
import statistics
import sys
import tempfile
import textwrap
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
import morula as mo  # noqa: E402
from timing import best_time  # noqa: E402


# --------------------------------------------------------------------------- (a) RK4 Lotka-Volterra

def lotka_volterra(x, y, a, b, c, d):
    return a * x - b * x * y, c * x * y - d * y


def rk4_loss(a, b, c, d):
    x, y = 1.0, 1.0
    h = 0.01
    for _ in range(1000):
        k1x, k1y = lotka_volterra(x, y, a, b, c, d)
        k2x, k2y = lotka_volterra(x + 0.5 * h * k1x, y + 0.5 * h * k1y, a, b, c, d)
        k3x, k3y = lotka_volterra(x + 0.5 * h * k2x, y + 0.5 * h * k2y, a, b, c, d)
        k4x, k4y = lotka_volterra(x + h * k3x, y + h * k3y, a, b, c, d)
        x = x + h / 6.0 * (k1x + 2.0 * k2x + 2.0 * k3x + k4x)
        y = y + h / 6.0 * (k1y + 2.0 * k2y + 2.0 * k3y + k4y)
    return x + y


def bench_rk4(results):
    params = (1.5, 1.0, 1.0, 3.0)
    plain = best_time(lambda: rk4_loss(*params), repeat=5)
    g = mo.grad(rk4_loss, argnums=(0, 1, 2, 3))
    g(*params)
    t_mo = best_time(lambda: g(*params), repeat=5)
    row = {"plain": plain, "morula": t_mo}
    if importlib.util.find_spec("autograd"):
        import autograd
        ag = autograd.grad(lambda p: rk4_loss(*p))
        ag(np.array(params))
        row["autograd"] = best_time(lambda: ag(np.array(params)), repeat=3)
    if importlib.util.find_spec("torch"):
        import torch
        torch.set_num_threads(1)

        def torch_grad():
            p = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in params]
            out = rk4_loss(*p)
            return torch.autograd.grad(out, p)
        torch_grad()
        row["torch"] = best_time(torch_grad, repeat=3)
    results["(a) RK4 Lotka-Volterra, 1000 steps, grad wrt 4 params"] = row


# --------------------------------------------------------------------------- (b) MLP

def mlp_loss(params, x, labels):
    h = x
    for W, b in params:
        h = h @ W + b
        if W.shape[1] != 10:
            h = np.maximum(h, 0.0)
    z = h - np.max(h, axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.mean(logp[np.arange(labels.shape[0]), labels])


def bench_mlp(results):
    rng = np.random.default_rng(0)
    sizes = [784, 512, 512, 10]
    params = [((rng.standard_normal((m, n)) / np.sqrt(m)).astype(np.float32), np.zeros(n, np.float32))
              for m, n in zip(sizes[:-1], sizes[1:])]
    x = rng.standard_normal((128, 784)).astype(np.float32)
    labels = rng.integers(0, 10, 128)
    plain = best_time(lambda: mlp_loss(params, x, labels), repeat=10)
    g = mo.grad(mlp_loss)
    grads = g(params, x, labels)
    assert grads[0][0].dtype == np.float32
    t_mo = best_time(lambda: g(params, x, labels), repeat=10)
    row = {"plain": plain, "morula": t_mo}
    if importlib.util.find_spec("autograd"):
        import autograd
        import autograd.numpy as anp

        def ag_loss(params, x, labels):
            h = x
            for W, b in params:
                h = h @ W + b
                if W.shape[1] != 10:
                    h = anp.maximum(h, 0.0)
            z = h - anp.max(h, axis=1, keepdims=True)
            logp = z - anp.log(anp.sum(anp.exp(z), axis=1, keepdims=True))
            return -anp.mean(logp[anp.arange(labels.shape[0]), labels])
        ag = autograd.grad(ag_loss)
        ag(params, x, labels)
        row["autograd"] = best_time(lambda: ag(params, x, labels), repeat=5)
    if importlib.util.find_spec("torch"):
        import torch
        torch.set_num_threads(os.cpu_count() or 1)
        tparams = [(torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True)) for W, b in params]
        tx, tl = torch.tensor(x), torch.tensor(labels)

        def torch_grad():
            h = tx
            for W, b in tparams:
                h = h @ W + b
                if W.shape[1] != 10:
                    h = torch.relu(h)
            loss = torch.nn.functional.cross_entropy(h, tl)
            return torch.autograd.grad(loss, [p for pair in tparams for p in pair])
        torch_grad()
        row["torch"] = best_time(torch_grad, repeat=10)
    results["(b) MLP 784-512-512-10 float32 batch 128, grad wrt weights"] = row


# --------------------------------------------------------------------------- (c) first call

def fifty_line_source():
    body = ["def long_function(x, y):", "    total = 0.0"]
    for i in range(24):
        body.append(f"    t{i} = x * {i + 1}.0 + y * y - {i}.5")
        body.append(f"    total = total + (t{i} if t{i} > 0 else -t{i}) * 0.5")
    body.append("    return total")
    return "\n".join(body) + "\n"


def bench_first_call(results):
    times = []
    for k in range(5):
        with tempfile.NamedTemporaryFile("w", suffix=f"_{k}.py", delete=False) as fh:
            fh.write(fifty_line_source().replace("total = 0.0", f"total = {k}.0"))
            path = fh.name
        spec = importlib.util.spec_from_file_location(f"fifty_{k}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        t0 = time.perf_counter()
        mo.grad(module.long_function)(1.0, 2.0)
        times.append(time.perf_counter() - t0)
        os.unlink(path)
    results["(c) first call (transform + compile + run), 50-line function"] = {"morula": statistics.median(times)}


def main():
    results = {}
    bench_rk4(results)
    bench_mlp(results)
    bench_first_call(results)
    print(f"{'benchmark':62s} {'system':9s} {'time':>10s} {'vs plain':>9s} {'vs morula':>10s}")
    for name, row in results.items():
        plain = row.get("plain")
        for system, t in row.items():
            vs_plain = f"{t / plain:8.2f}x" if plain else ""
            vs_mo = f"{t / row['morula']:9.2f}x" if "morula" in row else ""
            print(f"{name:62s} {system:9s} {t * 1e3:8.2f}ms {vs_plain:>9s} {vs_mo:>10s}")
        name = ""
    return results


if __name__ == "__main__":
    main()
