"""``jacobian`` pulls back many output cotangents in one backward sweep (morula.batched_jacobian).

Every whole-program case of the reverse-mode suites is made vector-valued and its Jacobian taken
with and without batching; both must agree (and agree with forward mode). Hand-written
vector-valued programs cover indexing, broadcasting, products, reductions and loops; programs that
write in place or take containers go row by row and must still be right.
"""
import contextlib

import numpy as np
import pytest

import morula as mo
from morula import batched_jacobian
from tests.forward.test_forward_programs import ALL

WEIGHTS = np.array([1.0, -2.0, 0.5])


@contextlib.contextmanager
def batching(enabled=True):
    """Run jacobian with batching on (recording whether each call batched) or off."""
    real = batched_jacobian.rows
    used = []

    def spy(*args):
        result = real(*args) if enabled else None
        used.append(result is not None)
        return result

    batched_jacobian.rows = spy
    try:
        yield used
    finally:
        batched_jacobian.rows = real


def both(f, args, argnums):
    with batching(True) as used:
        batched = mo.jacobian(f, argnums=argnums)(*args)
    with batching(False):
        rows = mo.jacobian(f, argnums=argnums)(*args)
    return batched, rows, bool(used and used[0])


def _differentiable_positions(args):
    return tuple(i for i, a in enumerate(args)
                 if type(a) is float or (type(a) is np.ndarray and a.dtype.kind == "f"))


def _assert_close(a, b):
    if isinstance(a, tuple):
        for x, y in zip(a, b):
            _assert_close(x, y)
        return
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_program_made_vector_valued(name, capsys):
    f, args = ALL[name]
    nums = _differentiable_positions(args)
    if not nums or not isinstance(f(*args), (float, np.floating)):
        pytest.skip("no float or array argument, or not a real scalar")

    def vector_valued(*a):
        return WEIGHTS * f(*a)

    batched, rows, used = both(vector_valued, args, nums)
    _assert_close(batched, rows)


def test_most_programs_are_batched(capsys):
    """Programs that write into no array batch (at the time of writing: 118 of 147 cases, the
    rest mostly the mutation suite, which goes row by row by design)."""
    used = []
    for name, (f, args) in sorted(ALL.items()):
        nums = _differentiable_positions(args)
        if not nums or not isinstance(f(*args), (float, np.floating)):
            continue
        with batching(True) as calls:
            mo.jacobian(lambda *a, f=f: WEIGHTS * f(*a), argnums=nums)(*args)
        used.append(bool(calls and calls[0]))
    assert sum(used) >= 0.75 * len(used), f"{sum(used)} of {len(used)} batched"


rng = np.random.default_rng(3)
A = rng.standard_normal((6, 5))


def layer(W, b, x):
    return np.tanh(W @ x + b)


def mlp(x):
    h = layer(A, 0.1, x)
    return h[:4] * h[1:5] + np.sum(h ** 2) / 3.0


def broadcast_and_reduce(X):
    centred = X - X.mean(axis=0, keepdims=True)
    return np.sqrt(np.sum(centred ** 2, axis=1) + 1.0)


def loop_and_stack(x):
    rows = []
    for i in range(3):
        rows.append(np.sin(x * (i + 1)) / (1.0 + x[i] ** 2))
    return np.stack(rows).reshape(-1)


def transpose_and_index(M):
    t = M.T @ M
    idx = np.array([0, 2, 2])
    return t[idx, 1] + t[1:3].sum(axis=0)[idx]


def scalar_parameters(a, b):
    x = np.linspace(0.0, 1.0, 5)
    return a * np.exp(-b * x) + b * b


def matrix_output(x):
    return np.outer(x, np.cos(x)) + np.diag(x)


def with_writes(x):
    y = np.zeros(4)
    y[1:] = x[:3] ** 2
    y[0] += x[3]
    return y * 2.0


def with_list_argument(xs):
    return np.array([xs[0] * xs[1], xs[1] ** 2, np.sin(xs[2])])


class Model:
    def __init__(self, scale):
        self.scale = scale

    def __call__(self, x):
        return self.scale * np.log1p(x * x)


def callable_object(x):
    return Model(1.5)(x)[::-1]


PROGRAMS = {
    "mlp": (mlp, (rng.standard_normal(5),), 0, True),
    "broadcast_and_reduce": (broadcast_and_reduce, (rng.standard_normal((4, 3)),), 0, True),
    "loop_and_stack": (loop_and_stack, (rng.standard_normal(4),), 0, True),
    "transpose_and_index": (transpose_and_index, (rng.standard_normal((3, 3)),), 0, True),
    "scalar_parameters": (scalar_parameters, (0.7, 1.3), (0, 1), True),
    "matrix_output": (matrix_output, (rng.standard_normal(3),), 0, True),
    "callable_object": (callable_object, (rng.standard_normal(4),), 0, True),
    "with_writes": (with_writes, (rng.standard_normal(4),), 0, False),
    "with_list_argument": (with_list_argument, ([0.3, 0.8, 1.1],), 0, False),
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_vector_valued_programs(name):
    f, args, argnums, expect_batched = PROGRAMS[name]
    batched, rows, used = both(f, args, argnums)
    assert used == expect_batched
    _assert_close(batched, rows)
    if expect_batched:
        forward = mo.jacfwd(f, argnums=argnums)(*args)
        if isinstance(argnums, tuple):
            for b, fw in zip(batched, forward):
                np.testing.assert_allclose(b, np.asarray(fw).reshape(b.shape), rtol=1e-9, atol=1e-12)
        else:
            np.testing.assert_allclose(batched, forward, rtol=1e-9, atol=1e-12)


def test_large_outputs_are_chunked(monkeypatch):
    monkeypatch.setattr(batched_jacobian, "CHUNK_ELEMENTS", 64)
    x = rng.standard_normal(30)
    with batching(True) as used:
        J = mo.jacobian(lambda v: np.sin(v) * v.sum())(x)
    assert used == [True]
    expected = np.diag(np.cos(x) * x.sum()) + np.sin(x)[:, None]
    np.testing.assert_allclose(J, expected, rtol=1e-12)


def test_a_wrong_batched_pullback_is_caught_and_the_rows_are_used():
    """A pullback wrongly declared batch-capable (it sums the batch away) gives a wrong batched
    sweep; the random-direction check notices and the Jacobian is computed row by row."""
    calls = []

    @mo.rrule(_wrongly_batched)
    def wrongly_batched_rule(x):
        def wrongly_batched_pullback(dy):
            calls.append(np.shape(dy))
            return (np.sum(dy) * np.ones_like(x) if np.ndim(dy) == 0 else
                    np.broadcast_to(np.sum(dy, axis=0, keepdims=False) * 0 + dy.sum(), x.shape) * 1.0,)
        return _wrongly_batched(x), wrongly_batched_pullback

    mo.reverse.shadow.batch_capable(wrongly_batched_rule)
    x = rng.standard_normal(3)
    with batching(True) as used:
        J = mo.jacobian(lambda v: _wrongly_batched(v) * np.array([1.0, 2.0, 3.0]))(x)
    assert used == [False]   # the batched rows were refused
    assert any(len(s) == 1 for s in calls)   # ... after a batched sweep was tried
    np.testing.assert_allclose(J, np.array([1.0, 2.0, 3.0])[:, None] * np.ones((3, 3)))


def _wrongly_batched(x):
    return float(np.sum(x))
