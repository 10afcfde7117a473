"""Randomly generated NumPy programs that alias and write in place -- views written through
(``v = u[1:]; v *= 1.5``), copies, results of arithmetic that must not alias their operands,
loops over an array after writes, a constant built inside and sliced -- checked with fixed
seeds: the gradient and the jvp against central differences, and the Hessian by dual arrays
(unchecked) against the column-by-column Hessian. This generator found two silent wrong
derivatives (tests/programs/corpus_adversarial.py: iterate_after_writing_through_a_view,
alias_of_a_sum_then_written)."""
import contextlib
import io
import random

import numpy as np
import pytest

import morula as mo
from morula import batched_hessian, dual_arrays
from tests.reverse.test_random_programs import load_program

STATEMENTS = [
    "u = x.copy()", "v = u[1:]", "v = u[::2]", "v = u.reshape(2, 3)[0]", "v = u.T", "v = u[:3]",
    "v *= 1.5", "v += x[:v.shape[0]] ** 2", "u[0] = v[-1] * x[1]", "u[1:3] = np.sin(v[:2])",
    "w = u + 1.0", "w += v.sum()", "w = +u", "w -= x * u", "u /= 1.0 + w ** 2", "u[...] = np.tanh(u) * w",
    "w = u.copy()", "w[2] = w[0] * w[1]", "v = w[1:5]", "v -= 0.5 * v[::-1]",
    "c = np.linspace(0.5, 1.5, 6); w = w * c[::-1]", "s = 0.0\nfor r in u: s = s + r * r\nw = w + s",
    "w = np.where(u > 0, u, w)", "u = np.maximum(u, w) if u.shape == w.shape else u",
]


def alias_program(seed):
    rng = random.Random(seed)
    body = ["import numpy as np", "", "def f(x):", "    u = x.copy()", "    v = u[1:]", "    w = u * 1.0"]
    for _ in range(rng.randint(3, 8)):
        body += ["    " + line for line in rng.choice(STATEMENTS).split("\n")]
    body.append("    return np.sum(u * u) + np.sum(np.sin(w)) + np.sum(v * x[:v.shape[0]] if v.ndim == 1 else v)")
    return "\n".join(body) + "\n"


X = np.random.default_rng(0).standard_normal(6) * 0.7


@pytest.mark.parametrize("seed", range(40))
def test_random_alias_program(seed, tmp_path):
    f = load_program(tmp_path, f"random_alias_program_{seed}", alias_program(seed)).f
    with np.errstate(all="ignore"):
        if not np.isfinite(f(X.copy())):
            pytest.skip("not finite at this point")
    v, eps = np.random.default_rng(seed).standard_normal(6), 1e-6
    fd = (f(X + eps * v) - f(X - eps * v)) / (2 * eps)
    assert mo.grad(f)(X.copy()) @ v == pytest.approx(fd, rel=1e-5, abs=1e-6)
    assert mo.jvp(f, (X.copy(),), (v,))[1] == pytest.approx(fd, rel=1e-5, abs=1e-6)
    seeded, parts, recording = dual_arrays.DUALS[0]
    found = {}
    with recording(), contextlib.redirect_stdout(io.StringIO()):
        batched_hessian._sweeps(f, (X.copy(),), {}, (0,), lambda g, n: mo.grad(g, argnums=n), seeded, parts, found)
    saved = list(dual_arrays.DUALS)
    dual_arrays.DUALS.clear()
    try:
        want = mo.hessian(f)(X.copy())
    finally:
        dual_arrays.DUALS.extend(saved)
    np.testing.assert_allclose(found[(0, 0)], want, rtol=1e-8, atol=1e-8)
