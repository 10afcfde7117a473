"""Programs the way users write them, through morula.grad, against finite differences."""
import numpy as np
import pytest

import morula as mo

from . import corpus_typical as P

rng = np.random.default_rng(1)
X = rng.standard_normal((6, 3))
y = (rng.random(6) > 0.5).astype(float)

CASES = {
    "logistic_regression": (P.logistic_loss, (rng.standard_normal(3), X, y)),
    "preallocate_and_fill": (P.fill_loop, (rng.standard_normal(5),)),
    "recurrence_reads_earlier_entries": (P.recurrence, (0.3, 0.1)),
    "in_place_heat_step": (P.inplace_heat, (rng.standard_normal(8), 0.2)),
    "item_float_numpy_scalars": (P.item_and_float, (rng.standard_normal(3),)),
    "norms": (P.norm_stuff, (rng.standard_normal(3),)),
    "python_list_statistics": (P.python_list_math, ([1.0, 2.5, 0.3, 4.0],)),
    "dataclass_with_defaults": (P.model_loss, (P.Model(rng.standard_normal(3), 0.5), rng.standard_normal(3))),
    "softmax_cross_entropy": (lambda logits: P.softmax_ce(logits, 2), (rng.standard_normal(4),)),
    "piecewise_negative": (P.piecewise, (-0.5,)),
    "piecewise_middle": (P.piecewise, (0.5,)),
    "piecewise_log": (P.piecewise, (2.5,)),
    "horner_polynomial": (P.poly_eval, ([1.0, 2.0, -0.5], 0.7)),
    "newton_iteration": (P.newton_sqrt, (2.0,)),
    "matrix_expressions": (P.matrix_ops, (rng.standard_normal((3, 2)), rng.standard_normal(2))),
    "where_and_clip": (P.where_clip, (rng.standard_normal(6),)),
    "concatenate_stack_reshape": (P.concat_split, (rng.standard_normal(4),)),
    "standardize_columns": (P.mean_axis_keep, (rng.standard_normal((5, 3)),)),
    "cumsum_prod": (P.cumsum_stuff, (rng.standard_normal(4),)),
    "advanced_and_mask_indexing": (P.advanced_index, (rng.random(4),)),
    "einsum": (P.einsum_use, (rng.standard_normal((3, 3)), rng.standard_normal((3, 3)))),
    "random_numbers_are_constants": (P.rng_inside, (rng.standard_normal(3),)),
    "list_of_weight_matrices": (P.list_of_arrays, ([rng.standard_normal((3, 3)) for _ in range(3)],
                                                    rng.standard_normal(3))),
    "tuple_state_in_loop": (P.tuple_state, (1.0,)),
    "user_kwargs": (P.call_kwargs_user, (1.5,)),
    "outer_inner": (P.outer_inner, (rng.standard_normal(3), rng.standard_normal(3))),
    "abs_max_min_builtin_and_numpy": (P.abs_max_min, (rng.standard_normal(3),)),
    "linspace_arange_constants": (P.arange_linspace, (0.7,)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_typical_program(name):
    f, args = CASES[name]
    mo.testing.check_grads(f, args, rtol=1e-5, atol=1e-6)


def test_astype_float32_roundtrip_keeps_input_dtype():
    g = mo.grad(P.astype_copy)(np.array([1.0, 2.0, 3.0]))
    assert g.dtype == np.float64
    np.testing.assert_allclose(g, [2.0, 4.0, 6.0], rtol=1e-6)


def test_in_place_and_out_of_place_heat_agree():
    def out_of_place(u0, k):
        u = u0
        for _ in range(10):
            inner = u[1:-1] + k * (u[2:] - 2 * u[1:-1] + u[:-2])
            u = np.concatenate([u[:1], inner, u[-1:]])
        return np.sum(u ** 2)

    u0 = rng.standard_normal(8)
    g_in = mo.grad(P.inplace_heat, argnums=(0, 1))(u0, 0.2)
    g_out = mo.grad(out_of_place, argnums=(0, 1))(u0, 0.2)
    np.testing.assert_allclose(g_in[0], g_out[0], rtol=1e-10)
    assert g_in[1] == pytest.approx(g_out[1], rel=1e-10)


def test_caller_sees_post_call_state_after_grad():
    def f(x):
        x[0] = 5.0
        return np.sum(x * x)

    x = np.array([1.0, 2.0])
    g = mo.grad(f)(x)
    np.testing.assert_allclose(x, [5.0, 2.0])   # the same side effect as calling f
    np.testing.assert_allclose(g, [0.0, 4.0])


from . import corpus_typical2 as Q  # noqa: E402

CASES2 = {
    "lambda_defaults_capture_loop_variable": (Q.closure_default, (0.7, 1.3)),
    "inner_recursive_closure": (lambda x: Q.nested_recursion(x, 5), (0.4,)),
    "enumerate_zip_nested_unpacking": (Q.enum_zip_unpack, ([1.0, 2.0, 3.0], [0.5, -1.0, 2.0])),
    "while_with_and_and_else": (Q.while_else, (1.3,)),
    "method_chains_and_new_axis": (Q.method_chain, (rng.standard_normal(6),)),
    "generators_over_arrays": (Q.gen_over_array, (rng.standard_normal(4),)),
    "tuple_swap_fibonacci": (Q.fib_swap, (0.7,)),
    "ternary_rebinding": (Q.abs_ternary, (-0.7,)),
    "isinstance_array_branch": (Q.isinstance_branch, (rng.standard_normal(3),)),
    "isinstance_float_branch": (Q.isinstance_branch, (0.7,)),
    "sorted_with_key_any_round": (Q.sorted_key, ([1.5, -0.3, 2.0],)),
    "user_class_iter_len_getitem": (Q.iterate_user_class, (0.7,)),
    "dict_comprehension_of_lambdas": (Q.dict_comprehension_dispatch, (0.7,)),
    "array_from_list_comprehension": (Q.array_of_generator, (0.7,)),
    "inner_function_appends_to_enclosing_list": (Q.inner_function_modifies_list, (0.7,)),
    "fstring_test": (Q.string_format_branch, (0.7,)),
    "max_with_default": (Q.max_with_default, ([1.0, 12.0, 3.0],)),
    "matrix_vector_loops_with_plus_equals": (Q.matrix_loop, (rng.standard_normal((3, 2)), rng.standard_normal(2))),
    "continue_in_elif_chain": (Q.conditional_accumulate, ([1.0, 3.0, -4.0, 0.2, 5.0], 0.5)),
    "fortran_ordered_intermediate_and_its_transpose": (Q.fortran_ordered_intermediate,
                                                        (rng.standard_normal((3, 5)),)),
}


@pytest.mark.parametrize("name", sorted(CASES2))
def test_typical_program_more(name):
    f, args = CASES2[name]
    mo.testing.check_grads(f, args, rtol=1e-5, atol=1e-6)
