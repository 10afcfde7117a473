"""Randomly generated NumPy programs -- elementwise functions with literal operands, reductions
with axes, products, views, an inlined helper, a copy written in place -- checked in both modes
against finite differences (first and second order) and jacobian against jacfwd. Fixed seeds."""
import random

import numpy as np
import pytest

import morula as mo
from tests.reverse.test_random_programs import load_program

UNARY = ["np.sin({})", "np.tanh({})", "np.exp(0.3 * {})", "np.log1p({} ** 2)", "np.abs({})", "np.sqrt(1.0 + {} ** 2)",
         "np.maximum({}, 0.1)", "np.minimum({}, -0.2)", "np.clip({}, -0.5, 0.7)", "({}) ** 2.0", "({}) * 2.0", "({}) / 3.0",
         "1.0 - ({})", "np.cumsum({}, axis=-1)", "np.flip({}, axis=-1)", "({})[..., ::-1]"]
BINARY = ["({} + {})", "({} - {})", "({} * {})", "({} / (1.0 + {} ** 2))", "np.maximum({}, {})", "np.where({} > 0, {}, 0.5)"]

def arr(rng, names, depth=0):
    """A random array expression over ``names``."""
    r = rng.random()
    if depth > 3 or r < 0.25:
        return rng.choice(names)
    if r < 0.6:
        return rng.choice(UNARY).format(arr(rng, names, depth + 1))
    return rng.choice(BINARY).format(arr(rng, names, depth + 1), arr(rng, names, depth + 1))

def array_program(seed):
    """The source of a module with a helper and ``f(x)`` of 12 numbers."""
    rng = random.Random(seed)
    body = ["import numpy as np", "", "W = np.linspace(-1.0, 1.0, 12).reshape(3, 4)", "",
            "def scaled(v, k):", "    return v * k + 0.5", "",
            "def f(x):", "    a = x.reshape(3, 4)", "    b = a.T"]
    names = ["a", "W"]
    for i in range(rng.randint(2, 5)):
        kind = rng.random()
        if kind < 0.5:
            body.append(f"    a = {arr(rng, names)}")
        elif kind < 0.65:
            body.append(f"    a = a + np.mean({arr(rng, names)}, axis={rng.choice([0, 1])}, keepdims=True)")
        elif kind < 0.8:
            body.append(f"    a = scaled({arr(rng, names)}, {round(rng.uniform(0.5, 1.5), 2)})")
        elif kind < 0.9:
            body.append(f"    a = (b @ a[:, :3]).T[:, :4] if a.shape == (3, 4) else a")
        else:
            body.append(f"    c = a.copy()")
            body.append(f"    c[1] = c[1] * {round(rng.uniform(0.5, 2.0), 2)}")
            body.append(f"    a = c")
    body.append("    return np.sum(a * a) + np.sum(a * W)")
    return "\n".join(body) + "\n"


X = np.random.default_rng(0).standard_normal(12) * 0.7


@pytest.mark.parametrize("seed", range(20))
def test_random_array_program(seed, tmp_path):
    module = load_program(tmp_path, f"random_array_program_{seed}", array_program(seed))
    with np.errstate(all="ignore"):
        value = module.f(X.copy())
    if not np.isfinite(value):
        pytest.skip("the generated program is not finite at this point")
    mo.testing.check_grads(module.f, (X.copy(),), modes=("rev", "fwd"), rtol=1e-4, atol=1e-6)
    mo.testing.check_grads(module.f, (X.copy(),), modes=("rev", "fwd"), order=2, rtol=1e-3, atol=1e-5)

    def vector(v):
        return module.f(v) * np.array([1.0, 2.0])
    np.testing.assert_allclose(mo.jacobian(vector)(X.copy()), mo.jacfwd(vector)(X.copy()),
                               rtol=1e-8, atol=1e-10)
