"""In-place writes to arrays: gradients against finite differences, and side effects kept."""
import numpy as np
import pytest

import morula as mo

from . import corpus_mutation as M

rng = np.random.default_rng(2)

CASES = {
    "preallocate_and_fill": (M.fill, (rng.standard_normal(6),)),
    "fill_2d": (M.fill_2d, (rng.standard_normal(3),)),
    "recurrence_reads_earlier_entries": (M.recurrence, (0.3, 0.1)),
    "in_place_arithmetic_and_mask_write": (M.in_place_arithmetic, (rng.random(5) + 0.5, 1.3)),
    "heat_in_place": (M.heat_in_place, (rng.standard_normal(12), 0.2)),
    "index_array_writes": (M.index_array_writes, (rng.standard_normal(4), rng.standard_normal(3))),
    "ellipsis_write": (M.ellipsis_write, (rng.standard_normal(3), rng.standard_normal(3))),
    "alias_then_write": (M.alias_then_write, (rng.standard_normal(3),)),
    "view_then_write": (M.view_then_write, (rng.standard_normal(6),)),
    "transpose_reshape_step_views": (M.transpose_and_reshape_views, (rng.standard_normal((3, 3)),)),
    "in_place_rhs_argument": (M.euler_with_in_place_rhs, (np.array([1.0, 0.5]), np.array([1.1, 0.4, 0.9]))),
    "same_array_read_and_written": (M.same_array_twice, (rng.standard_normal(3), 1.7)),
    "trajectory_of_copies": (M.trajectory, (rng.standard_normal(2), 0.3)),
    "simulator_object_state": (M.simulate, (rng.standard_normal(3), 1.5)),
    "add_at_copyto_fill_out": (M.numpy_in_place_functions, (rng.standard_normal(5), 0.7)),
    "list_alias": (M.list_alias, (0.7,)),
    "dict_alias": (M.dict_alias, (0.7,)),
    "object_alias": (M.object_alias, (0.7,)),
    "nested_list_alias": (M.nested_list_alias, (0.7,)),
    "list_written_by_helper": (M.list_written_by_helper, (0.7,)),
    "list_methods_in_loop": (M.list_methods_in_loop, (0.7,)),
    "state_dict_threaded": (M.state_dict_threaded, (0.7,)),
    "list_read_in_loop": (M.list_read_in_loop, ([0.5, 1.5, -2.0, 3.0],)),
    "dict_update_with_keywords": (M.dict_update_keywords, (0.7,)),
    "list_sort_with_keywords": (M.sort_with_keywords, (0.7,)),
    "fill_diagonal": (M.fill_diagonal_inside, (0.7,)),
    "out_into_zero_dim_arrays": (M.out_into_zero_dim, (rng.standard_normal(2),)),
    "property_setter": (M.property_setter, (0.7,)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_mutation_program(name):
    f, args = CASES[name]
    mo.testing.check_grads(f, args, rtol=1e-5, atol=1e-7)


def test_in_place_and_out_of_place_heat_give_the_same_gradient():
    u0 = rng.standard_normal(32)
    g_in = mo.grad(M.heat_in_place, argnums=(0, 1))(u0, 0.2)
    g_out = mo.grad(M.heat_out_of_place, argnums=(0, 1))(u0, 0.2)
    np.testing.assert_allclose(g_in[0], g_out[0], rtol=1e-10, atol=1e-12)
    assert g_in[1] == pytest.approx(g_out[1], rel=1e-10)


def test_top_level_argument_keeps_the_state_f_leaves():
    x = np.array([1.0, 2.0, 3.0])
    out, pullback = mo.vjp(M.mutate_argument_top_level, x)
    np.testing.assert_allclose(x, [4.0, 2.0, 3.0])
    g1, = pullback(1.0)
    np.testing.assert_allclose(x, [4.0, 2.0, 3.0])   # restored after the backward sweep
    g2, = pullback(1.0)
    np.testing.assert_allclose(g1, g2)                 # a pullback can run twice
    # d/dx of sum(x'^2) with x'0 = 2 x1: x0 is overwritten, x1 counts twice
    np.testing.assert_allclose(g1, [0.0, 2 * 2.0 + 2 * 4.0 * 2.0, 6.0])


def test_object_state_after_grad_is_what_f_leaves():
    x0 = np.array([1.0, 0.0])
    sim = M.Simulator(x0, np.zeros(2))

    def run(k):
        for _ in range(3):
            sim.step(0.1, k)
        return np.sum(sim.x ** 2)

    mo.grad(run)(2.0)
    reference = M.Simulator(x0, np.zeros(2))
    for _ in range(3):
        reference.step(0.1, 2.0)
    np.testing.assert_allclose(sim.x, reference.x)
    np.testing.assert_allclose(sim.v, reference.v)
    assert sim.t == pytest.approx(reference.t)


def test_untrackable_in_place_operations_are_refused():
    def f(x):
        y = x.copy()
        y.sort()
        return np.sum(y * x)

    with pytest.raises(mo.UnsupportedOperationError, match="np.sort"):
        mo.grad(f)(np.array([3.0, 1.0, 2.0]))

    def g(x):
        y = x.copy()
        y.resize(5)
        return np.sum(y)

    with pytest.raises(mo.UnsupportedOperationError, match="resize"):
        mo.grad(g)(np.array([3.0, 1.0, 2.0]))


def test_gradient_mirrors_the_argument_as_passed_not_as_left():
    assert mo.grad(M.pops_argument)([1.0, 5.0]) == [1.0, 2.0]
    assert mo.grad(M.appends_to_argument)([1.0, 5.0]) == [3.0, 1.0]
    assert mo.grad(M.adds_key_to_argument)({"a": 1.0}) == {"a": 4.0}


def test_object_arrays_are_refused():
    def f(x):
        a = np.array([x, 1.0], dtype=object)
        return float(np.sum(a * a))

    with pytest.raises(mo.UnsupportedOperationError, match="dtype=object"):
        mo.grad(f)(2.0)


# In-place NumPy operations swept by the whole programs above (shapes, repeated indices, out=,
# views) and by tests/rules (read by scripts/rules_table.py for the "tested" column).
SWEPT = [np.copyto, np.fill_diagonal, (np.ndarray, "fill"), (np.ufunc, "at")]


def test_pullback_refuses_an_argument_changed_after_vjp():
    def f(x):
        return np.sum(np.sin(x) * x)

    x = np.array([0.3, 0.7])
    _, pullback = mo.vjp(f, x)
    first = pullback(1.0)[0]
    np.testing.assert_allclose(pullback(1.0)[0], first)
    x[0] = 5.0
    with pytest.raises(mo.UnsupportedOperationError, match="changed in place after vjp"):
        pullback(1.0)
    x[0] = 0.3   # restored: fine again
    np.testing.assert_allclose(pullback(1.0)[0], first)
