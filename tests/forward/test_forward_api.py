"""The forward-mode API: jvp, jacfwd, hessian, hvp, frule, source(mode="forward")."""
import dataclasses
import threading
from typing import NamedTuple

import numpy as np
import pytest

import morula as mo


@dataclasses.dataclass
class Params:
    w: np.ndarray
    b: float


class Point(NamedTuple):
    x: float
    y: float


class Box:
    def __init__(self, v):
        self.v = v


def test_jvp_of_structured_inputs_and_outputs():
    def f(p, pt, d, box):
        s = np.sum(p.w * pt.x) + p.b * pt.y + d["a"] * box.v
        return {"s": s, "pair": (s * 2.0, [p.w * s])}
    p, pt, d, box = Params(np.array([1.0, 2.0]), 0.5), Point(1.5, -1.0), {"a": 3.0}, Box(0.25)
    tp, tpt = Params(np.array([1.0, 0.0]), 1.0), Point(0.0, 1.0)
    out, t = mo.jvp(f, (p, pt, d, box), (tp, tpt, {"a": 0.0}, mo.ObjectCotangent({"v": 2.0})))
    ds = 1.0 * 1.5 + (1.0 * (-1.0) + 0.5 * 1.0) + 3.0 * 2.0
    assert t["s"] == pytest.approx(ds)
    assert t["pair"][0] == pytest.approx(2 * ds)
    np.testing.assert_allclose(t["pair"][1][0], np.array([1.0, 0.0]) * out["s"] + p.w * ds)


def test_jvp_zero_and_none_tangents_and_integer_primals():
    out, t = mo.jvp(lambda x, n: x * n, (2, 3), (1.0, None))
    assert out == 6 and t == 3.0 and isinstance(t, float)
    out, t = mo.jvp(lambda x: np.floor(x) + x.shape[0], (np.array([1.5, 2.5]),), (np.ones(2),))
    np.testing.assert_array_equal(t, np.zeros(2))


def test_jvp_argument_errors():
    with pytest.raises(ValueError, match="2 primals but 1 tangents"):
        mo.jvp(lambda a, b: a * b, (1.0, 2.0), (1.0,))
    with pytest.raises(ValueError, match="shape"):
        mo.jvp(np.sin, (np.ones(3),), (np.ones(2),))


def test_jvp_refuses_generators_before_running():
    def gen(x):
        yield x
    with pytest.raises(mo.UnsupportedSyntaxError):
        mo.jvp(lambda x: sum(gen(x)), (1.0,), (1.0,))


def test_missing_rule_in_forward_mode_names_the_line():
    import ctypes
    libm = ctypes.CDLL(None)
    libm.cos.restype = ctypes.c_double
    libm.cos.argtypes = [ctypes.c_double]

    def f(x):
        return libm.cos(x) * x
    with pytest.raises(mo.MissingRuleError) as info:
        mo.jvp(f, (0.3,), (1.0,))
    assert "test_forward_api.py" in str(info.value)


def test_jacfwd_matches_jacobian_and_tuple_argnums():
    def f(a, b):
        return np.tanh(a[:, None] * b[None, :]).ravel()
    a, b = np.array([0.1, 0.5]), np.array([1.0, -2.0, 0.3])
    Ja, Jb = mo.jacfwd(f, argnums=(0, 1))(a, b)
    Ra, Rb = mo.jacobian(f, argnums=(0, 1))(a, b)
    assert Ja.shape == (6, 2) and Jb.shape == (6, 3)
    np.testing.assert_allclose(Ja, Ra, rtol=1e-12)
    np.testing.assert_allclose(Jb, Rb, rtol=1e-12)
    assert mo.jacfwd(lambda x: x ** 3)(2.0).shape == ()


def test_hvp_of_several_primals():
    def f(a, b):
        return np.sum(a ** 2 * b) + np.sum(np.sin(a))
    a, b = np.array([0.3, -0.4]), np.array([1.0, 2.0])
    va, vb = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    ha, hb = mo.hvp(f, (a, b), (va, vb))
    # H = [[diag(2b - sin a), diag(2a)], [diag(2a), 0]]
    np.testing.assert_allclose(ha, (2 * b - np.sin(a)) * va + 2 * a * vb)
    np.testing.assert_allclose(hb, 2 * a * va)


def test_frule_is_used_and_can_be_replaced():
    calls = []

    def cube(x):
        return x ** 3

    @mo.rrule(cube)
    def cube_rule(x):
        return x ** 3, lambda g: (3 * x * x * g,)

    @mo.frule(cube)
    def cube_frule(primals, tangents):
        calls.append(1)
        (x,), (t,) = primals, tangents
        return x ** 3, 3 * x * x * t

    assert mo.jvp(cube, (2.0,), (1.0,)) == (8.0, 12.0) and calls
    mo.frule(cube)(lambda primals, tangents: (primals[0] ** 3, 0.0))
    assert mo.jvp(cube, (2.0,), (1.0,))[1] == 0.0


def test_source_in_forward_mode():
    def f(x):
        y = x * 2.0
        return np.sin(y)
    text = mo.source(f, mode="forward", file=None)
    assert "def f__jvp" in text and "# line" in text
    with pytest.raises(ValueError):
        mo.source(f, mode="sideways", file=None)


def test_concurrent_jvps():
    def f(x, k):
        u = x.copy()
        for _ in range(10):
            u[1:] += k * u[:-1]
        return np.sum(u ** 2)
    x = np.linspace(0.0, 1.0, 6)
    expected = {k: mo.jvp(f, (x, k), (np.ones(6), 0.0))[1] for k in (0.1, 0.2, 0.3)}
    errors = []

    def work(k):
        for _ in range(20):
            if abs(mo.jvp(f, (x, k), (np.ones(6), 0.0))[1] - expected[k]) > 1e-12:
                errors.append(k)
    threads = [threading.Thread(target=work, args=(k,)) for k in (0.1, 0.2, 0.3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_a_second_jvp_does_not_retransform():
    from morula.forward import transform

    def f(x):
        return x * x
    mo.jvp(f, (1.0,), (1.0,))
    before = len(transform._code_cache)
    mo.jvp(f, (2.0,), (1.0,))
    assert len(transform._code_cache) == before


def test_numpy_scalars_kept_in_containers_carry_their_tangents():
    def f(x):
        acc = {"a": x[0], "b": [x[1]]}
        acc["c"] = x[0] * x[1]
        return acc["a"] * acc["b"][0] + acc["c"]
    mo.testing.check_grads(f, (np.array([0.5, 1.2]),), modes=("fwd", "rev"), order=2)


def test_defaults_taken_from_locals_keep_their_def_time_tangents():
    def f(x):
        fs = [lambda t, c=c: c * t for c in x]
        return np.array([h(1.0) for h in fs])
    x, v = np.array([1.0, 2.0, 3.0]), np.array([1.0, 10.0, 100.0])
    np.testing.assert_allclose(mo.jvp(f, (x,), (v,))[1], v)

    def f3(x, y):
        a = x
        g = lambda t, b=a: b * t      # noqa: E731
        a = y
        return g(2.0) + a
    assert mo.jvp(f3, (1.0, 10.0), (1.0, 0.0))[1] == pytest.approx(2.0)


def test_string_formatting_and_array_attribute_writes():
    def f(x):
        msg = "val %.2f" % x      # noqa: F841
        return 2.0 * x
    assert mo.jvp(f, (1.5,), (1.0,))[1] == 2.0

    def g(x):
        z = np.zeros(2, complex)
        z.real = x
        z.imag = 2 * x
        return z * 1.0
    np.testing.assert_allclose(mo.jvp(g, (np.array([0.5, -0.3]),), (np.array([1.0, 2.0]),))[1],
                               np.array([1.0, 2.0]) * (1 + 2j))

    def h(x):
        return x.flat[1] * 2.0
    with pytest.raises(mo.MissingRuleError):
        mo.jvp(h, (np.array([1.0, 2.0]),), (np.ones(2),))


def test_writes_through_vars_and_dict_subclasses():
    class O:
        pass

    class Plain(dict):
        pass

    def f(x):
        o = O()
        o.__dict__["z"] = x * 2.0
        vars(o)["w"] = x * 3.0
        p = Plain(a=x)
        return o.z + o.w + p["a"] * 2.0
    assert mo.jvp(f, (1.5,), (1.0,))[1] == pytest.approx(7.0)


def test_scipy_rules_load_in_forward_mode_first():
    import subprocess
    import sys
    import textwrap
    code = textwrap.dedent("""
        import numpy as np, scipy.special as sp, morula as mo
        import pathlib, tempfile
        src = "import scipy.special as sp\\ndef g(x):\\n    return sp.erf(x)\\n"
        path = pathlib.Path(tempfile.mkdtemp()) / "m.py"
        path.write_text(src)
        import importlib.util
        spec = importlib.util.spec_from_file_location("m", path); m = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(m)
        t = mo.jvp(m.g, (np.array([0.5]),), (np.ones(1),))[1]
        assert abs(t[0] - 2 / np.sqrt(np.pi) * np.exp(-0.25)) < 1e-12, t
    """)
    pytest.importorskip("scipy")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_np_vectorize_in_forward_mode():
    def sq1(a):
        return a * a + 1.0

    def v1(x):
        return np.sum(np.vectorize(sq1)(x))
    x = np.array([0.7, -0.4, 1.3])
    assert mo.jvp(v1, (x,), (np.ones(3),))[1] == pytest.approx(2 * np.sum(x))


def test_jacfwd_of_structured_outputs():
    def f(x):
        return {"a": 2 * x, "b": (x[0] * x[1], np.sum(x))}
    x = np.array([0.5, 1.5])
    J = mo.jacfwd(f)(x)
    np.testing.assert_allclose(J["a"], 2 * np.eye(2))
    np.testing.assert_allclose(J["b"][0], [1.5, 0.5])
    np.testing.assert_allclose(J["b"][1], [1.0, 1.0])
