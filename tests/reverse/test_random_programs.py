"""Randomly generated scalar programs -- helpers that get inlined (some returning pairs), loops
whose float arithmetic forms runs, int literals mixed in, literal-only numbers, branches, and
closures made in loops and called after them -- checked in both modes against finite
differences, first and second order. Fixed seeds: a failure names a reproducible program."""
import importlib.util
import math
import random

import pytest

import morula as mo

OPS = ["+", "-", "*"]

def expr(rng, names, depth=0, helpers=True):
    """A random float expression over ``names`` (calls of the helpers unless ``helpers`` is false)."""
    r = rng.random()
    if not helpers and 0.7 <= r < 0.8:
        r = 0.65
    if depth > 2 or r < 0.3:
        c = rng.random()
        if c < 0.6:
            return rng.choice(names)
        if c < 0.8:
            return repr(round(rng.uniform(-2, 2), 2))
        return str(rng.randint(1, 3))     # an int literal
    if r < 0.5:
        return f"({expr(rng, names, depth+1, helpers)} {rng.choice(OPS)} {expr(rng, names, depth+1, helpers)})"
    if r < 0.6:
        return f"({expr(rng, names, depth+1, helpers)} / (1.5 + {expr(rng, names, depth+1, helpers)} ** 2))"
    if r < 0.7:
        return f"math.sin({expr(rng, names, depth+1, helpers)})"
    if r < 0.8:
        return f"helper{rng.randint(0, 2)}({expr(rng, names, depth+1, helpers)}, {expr(rng, names, depth+1, helpers)})"
    if r < 0.9:
        return f"(-{expr(rng, names, depth+1, helpers)})"
    return f"({expr(rng, names, depth+1, helpers)} ** 2)"

def program(seed):
    """The source of a module with three helpers and ``f(x, y)``."""
    rng = random.Random(seed)
    lines = ["import math", ""]
    for k in range(3):
        a = expr(rng, ["u", "v"], helpers=False)
        b = expr(rng, ["u", "v"], helpers=False)
        if rng.random() < 0.5:
            lines += [f"def helper{k}(u, v):", f"    w = {a}", f"    return w * 0.5 + {b}", ""]
        else:
            lines += [f"def pair{k}(u, v):", f"    return {a}, {b}", "",
                      f"def helper{k}(u, v):", f"    p, q = pair{k}(u, v)", f"    return p - q * 0.25", ""]
    body = ["def f(x, y):", "    h = 0.1", "    a = x", "    b = y", "    fs = []"]
    names = ["x", "y", "a", "b", "h"]
    for i in range(rng.randint(2, 5)):
        kind = rng.random()
        if kind < 0.4:
            t = rng.choice(["a", "b"])
            body.append(f"    {t} = {expr(rng, names)}")
        elif kind < 0.7:
            body.append(f"    for i in range({rng.randint(1, 3)}):")
            body.append(f"        a = {expr(rng, names + ['i'])} * 0.3")
            if rng.random() < 0.5:
                body.append(f"        fs.append(lambda t: t * a + b)")
            body.append(f"        b = b * 0.9 + {expr(rng, names)} * h")
        else:
            body.append(f"    if {expr(rng, names)} > 0:")
            body.append(f"        a = {expr(rng, names)}")
            body.append(f"    else:")
            body.append(f"        b = {expr(rng, names)}")
        body.append("    a = math.tanh(a)")
        body.append("    b = math.tanh(b)")
    body.append("    return a * b + a + sum(g(0.5) for g in fs)")
    return "\n".join(lines + body) + "\n"


def load_program(folder, name, source):
    """Write ``source`` as module ``name`` in ``folder`` (morula reads functions' source files)
    and import it."""
    path = folder / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("seed", range(30))
def test_random_program(seed, tmp_path):
    module = load_program(tmp_path, f"random_program_{seed}", program(seed))
    x, y = 0.37, -0.61
    try:
        value = module.f(x, y)
    except (OverflowError, ZeroDivisionError):
        pytest.skip("the generated program fails in plain Python at this point")
    if not math.isfinite(value):
        pytest.skip("the generated program is not finite at this point")
    mo.testing.check_grads(module.f, (x, y), modes=("rev", "fwd"), rtol=1e-4, atol=1e-6)
    mo.testing.check_grads(module.f, (x, y), modes=("rev", "fwd"), order=2, rtol=1e-3, atol=1e-5)
