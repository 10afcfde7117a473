"""Property-based tests: random straight-line, branching and looping programs against finite differences.

Hypothesis builds small programs over two float inputs (arithmetic, math functions, branches,
loops that read and update variables, list building, in-place array updates), writes them to a
file (morula reads source), and checks morula's gradient against central differences.
"""

import importlib.util
import itertools
import math

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import morula as mo  # noqa: E402

VARS = ["x", "y", "a", "b"]
UNARY = ["math.sin({})", "math.cos({})", "math.tanh({})", "({}) * 0.5", "-({})", "math.exp(math.tanh({}))",
         "abs({}) + 1.0"]
BINARY = ["({}) + ({})", "({}) - ({})", "({}) * ({})", "({}) / (1.5 + ({}) ** 2)", "max({}, {})", "min({}, {})"]


@st.composite
def expressions(draw, depth=0):
    if depth >= 3 or draw(st.integers(0, 3)) == 0:
        if draw(st.booleans()):
            return draw(st.sampled_from(VARS))
        return repr(draw(st.floats(-2.0, 2.0, allow_nan=False).map(lambda v: round(v, 2))))
    if draw(st.booleans()):
        return draw(st.sampled_from(UNARY)).format(draw(expressions(depth + 1)))
    return draw(st.sampled_from(BINARY)).format(draw(expressions(depth + 1)), draw(expressions(depth + 1)))


@st.composite
def statements(draw, depth=0):
    kind = draw(st.sampled_from(["assign", "assign", "if", "for", "list", "array"] if depth < 2 else ["assign"]))
    target = draw(st.sampled_from(["a", "b"]))
    if kind == "assign":
        return [f"{target} = {draw(expressions())}"]
    if kind == "if":
        body = [f"    {line}" for s in draw(st.lists(statements(depth + 1), min_size=1, max_size=2)) for line in s]
        orelse = [f"    {line}" for s in draw(st.lists(statements(depth + 1), min_size=1, max_size=2)) for line in s]
        return [f"if {draw(expressions())} > {draw(expressions())}:"] + body + ["else:"] + orelse
    if kind == "for":
        n = draw(st.integers(1, 3))
        body = [f"    {line}" for s in draw(st.lists(statements(depth + 1), min_size=1, max_size=2)) for line in s]
        return [f"for i in range({n}):"] + body
    if kind == "list":
        return [f"items = [{draw(expressions())}, {draw(expressions())}]",
                f"items.append(items[0] * {target})",
                f"{target} = sum(items) * 0.25"]
    return ["arr = np.array([a, b, x])",
            f"arr[1:] += arr[:-1] * {draw(expressions())}",
            f"{target} = float(np.sum(np.sin(arr)))"]


@st.composite
def programs(draw):
    body = ["a = x", "b = y"]
    for s in draw(st.lists(statements(), min_size=1, max_size=5)):
        body += s
    body.append(f"return {draw(expressions())} + a * b")
    return "def program(x, y):\n" + "\n".join("    " + line for line in body) + "\n"


_counter = itertools.count()


def load(source, tmp_path):
    path = tmp_path / f"random_program_{next(_counter)}.py"
    path.write_text("import math\nimport numpy as np\n\n" + source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.program


def _smooth_enough(f, x, y, eps=1e-4):
    """Skip points next to a kink or branch switch, where finite differences are meaningless:
    the one-sided slopes in each direction must agree."""
    f0 = f(x, y)
    if not (math.isfinite(f0) and abs(f0) < 1e6):
        return False
    for dx, dy in ((eps, 0.0), (0.0, eps)):
        right = (f(x + dx, y + dy) - f0) / eps
        left = (f0 - f(x - dx, y - dy)) / eps
        if not (math.isfinite(right) and math.isfinite(left)) or abs(right - left) > 1e-3 * (1 + abs(right)):
            return False
    return True


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(source=programs(), x=st.floats(-1.5, 1.5), y=st.floats(-1.5, 1.5))
def test_random_program_gradient_matches_finite_differences(tmp_path, source, x, y):
    f = load(source, tmp_path)
    # keep away from exact ties with the program's round constants (max(y, 0.0) at y = 0.0 is a
    # kink where any one-sided convention is right and finite differences may see a flat spot)
    x, y = x + 1e-3 * math.pi, y - 1e-3 * math.e
    if not _smooth_enough(f, x, y):
        return
    gx, gy = mo.grad(f, argnums=(0, 1))(x, y)
    eps = 1e-6
    fx = (f(x + eps, y) - f(x - eps, y)) / (2 * eps)
    fy = (f(x, y + eps) - f(x, y - eps)) / (2 * eps)
    assert np.isclose(gx, fx, rtol=1e-4, atol=1e-5), source
    assert np.isclose(gy, fy, rtol=1e-4, atol=1e-5), source


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(source=programs(), x=st.floats(-1.5, 1.5), y=st.floats(-1.5, 1.5))
def test_random_program_forward_mode_agrees_with_reverse(tmp_path, source, x, y):
    f = load(source, tmp_path)
    x, y = x + 1e-3 * math.pi, y - 1e-3 * math.e
    if not _smooth_enough(f, x, y):
        return
    gx, gy = mo.grad(f, argnums=(0, 1))(x, y)
    _, tx = mo.jvp(f, (x, y), (1.0, 0.0))
    _, ty = mo.jvp(f, (x, y), (0.0, 1.0))
    assert np.isclose(tx, gx, rtol=1e-9, atol=1e-12), source
    assert np.isclose(ty, gy, rtol=1e-9, atol=1e-12), source
