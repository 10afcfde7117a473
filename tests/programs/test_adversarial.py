"""Regression cases from adversarial testing, against finite differences."""
import operator

import numpy as np
import pytest

import morula as mo

from . import corpus_adversarial as A

_RNG = np.random.default_rng(0)
_X, _W = _RNG.standard_normal((3, 3)), _RNG.standard_normal((3, 3))

CASES = {
    "iterate_after_writing_through_a_view": (A.iterate_after_writing_through_a_view,
                                             (np.array([0.3, -0.7, 1.1, 0.4]),)),
    "alias_of_a_sum_then_written": (A.alias_of_a_sum_then_written, (np.array([0.3, -0.5, 0.8]),)),
    "builtin_protocols_abs_float_pow": (A.builtin_protocols, (3.0, 4.0)),
    "setattr_vars_dict_getattr": (A.dynamic_attributes, (0.7,)),
    "container_inplace_operators": (A.container_inplace_operators, (0.7,)),
    "closure_variable_rebound_after_def": (A.closure_rebound, (0.7,)),
    "closure_calling_a_capturing_closure": (A.closure_calling_a_capturing_closure, (1.5,)),
    "lambda_reads_a_variable_rebound_after_it": (A.lambda_reads_a_variable_rebound_after_it, (0.7,)),
    "closures_made_in_a_loop_called_after_it": (A.closures_made_in_a_loop_called_after_it, (0.7,)),
    "closure_called_in_its_iteration_and_after": (A.closure_called_in_its_iteration_and_after, (0.7,)),
    "returned_closure_reads_the_rebound_parameter": (A.returned_closure_reads_the_rebound_parameter,
                                                     (0.7,)),
    "nested_closures_over_a_rebound_variable": (A.nested_closures_over_a_rebound_variable, (0.7,)),
    "caller_mutates_returned_view": (A.caller_mutates_returned_view, (np.array([1.0, 2.0, 3.0]),)),
    "caller_mutates_after_inlined_use": (A.caller_mutates_after_inlined_use, (np.array([1.0, 2.0, 3.0]),)),
    "uses_global_helper": (A.uses_global_helper, (np.array([0.3, 0.2, -0.5]),)),
    "swap_loop": (A.swap_loop, (0.7, 1.2)),
    "handles_none": (A.handles_none, (0.9,)),
    "mutates_list_after": (A.mutates_list_after, (0.8,)),
    "passes_closure": (A.passes_closure, (0.6,)),
    "nested_helper_calls": (A.nested_helper_calls, (0.7,)),
    "array_and_float_mix": (A.array_and_float_mix, (np.array([0.1, 0.2]), 1.5)),
    "shared_cell_alternating": (A.shared_cell_alternating, (0.7,)),
    "closure_over_array_mutated": (A.closure_over_array_mutated, (np.array([0.3, 0.4]),)),
    "nested_loops_late": (A.nested_loops_late, (0.8,)),
    "returned_closures": (A.returned_closures, (0.6,)),
    "recursive_closure": (A.recursive_closure, (0.9,)),
    "closure_in_comprehension": (A.closure_in_comprehension, (0.7,)),
    "closure_chain": (A.closure_chain, (0.5,)),
    "closure_param_rebound": (A.closure_param_rebound, (0.7, 1.3)),
    "partial_made_by_a_star_call": (A.partial_made_by_a_star_call, (1.4, 0.6)),
    "dict_copied_then_original_loses_the_key": (A.dict_copied_then_original_loses_the_key,
                                                (np.array([0.7, 1.3]),)),
    "star_unpacking_an_array": (A.star_unpacking_an_array, (np.array([1.0, 2.0, 3.0]),)),
    "unused_in_place_update_of_a_numpy_scalar": (A.unused_in_place_update_of_a_numpy_scalar,
                                                 (np.array([2.0, 1.0]),)),
    "defaults_from_expressions": (A.defaults_from_expressions, (0.7,)),
    "lambdas_in_comprehension": (A.lambdas_in_comprehension, (0.7,)),
    "writes_into_captured_containers": (A.writes_into_captured_containers, (0.7,)),
    "nested_plain_objects": (A.nested_objects, (A.World([A.Particle(0.3), A.Particle(0.5)]),)),
    "floats_updated_in_place_but_unused": (A.floats_updated_in_place_but_unused, (0.7,)),
    "namedtuple_iteration_and_methods": (A.namedtuple_iteration_and_methods, (0.7,)),
    "list_subclass": (A.list_subclass, (0.7,)),
    "array_writes_from_lists": (A.array_writes_from_lists, (0.7,)),
    "builtins_keywords_and_itertools": (A.builtins_with_keywords_and_itertools, (0.7,)),
    "array_overwritten_after_put_in_list": (A.array_overwritten_after_put_in_list, (0.7,)),
    "trajectory_appends_the_same_array": (A.trajectory_appends_the_same_array,
                                          (np.array([0.5, -1.0]), 0.3)),
    "arrays_scaled_after_put_in_containers": (A.arrays_scaled_after_put_in_containers, (0.7,)),
    "list_slot_replaced_after_rule": (A.list_slot_replaced_after_rule, (0.7,)),
    "nested_tolist": (A.nested_tolist, (np.array([[1.0, 2.0], [3.0, 4.0]]),)),
    "numpy_scalar_methods": (A.numpy_scalar_methods, (np.array([0.3, -0.8]),)),
    "zipped_arrays_mutated_later": (A.zipped_arrays_mutated_later, (_X, _W)),
    "callbacks_accumulating_into_a_closed_over_list": (A.callbacks_accumulating_into_a_closed_over_list,
                                                       (np.array([0.5, -1.2, 2.0]),)),
}

# functions that write into their first argument (x); the gradient is taken with respect to w
WRITES = [A.written_by_operator_setitem, A.written_by_dunder_setitem, A.written_by_partial_copyto,
          A.written_by_local_star_call, A.written_in_callbacks, A.written_in_apply_along_axis,
          A.written_in_vectorize, A.augmented_assignment_evaluates_once,
          A.augmented_assignment_through_a_property, A.written_in_key_functions,
          A.bound_builtin_methods_as_values, A.unbound_setitem_of_builtin_types,
          A.partial_with_an_out_argument]
SWEPT = [operator.setitem]


@pytest.mark.parametrize("f", WRITES, ids=lambda f: f.__name__)
def test_writes_through_functions_and_callbacks(f):
    mo.testing.check_grads(lambda w: f(_X.copy(), w), (_W.copy(),), rtol=1e-5, atol=1e-7)
    _, gw = mo.grad(f, argnums=(0, 1))(_X.copy(), _W.copy())
    np.testing.assert_allclose(mo.grad(f, argnums=1)(_X.copy(), _W.copy()), gw)


def test_writeable_sliding_windows_are_refused():
    def f(x, w):
        v = np.lib.stride_tricks.sliding_window_view(x, (1, 3), writeable=True)
        v[0, 0, 0] = w[0]
        return np.sum(x)

    with pytest.raises(mo.UnsupportedOperationError, match="writeable sliding_window_view"):
        mo.grad(f, argnums=1)(_X.copy(), _W.copy())


@pytest.mark.parametrize("name", sorted(CASES))
def test_adversarial_case(name):
    f, args = CASES[name]
    mo.testing.check_grads(f, args, rtol=1e-5, atol=1e-7)


def test_nested_plain_object_gradient_has_structure():
    g = mo.grad(A.nested_objects)(A.World([A.Particle(0.3), A.Particle(0.5)]))
    assert [p.pos for p in g.ps] == [pytest.approx(0.6), pytest.approx(1.0)]


def test_rule_returning_a_list_inside_a_tuple():
    def pair(x):
        return ([x * 2.0],)

    @mo.rrule(pair)
    def pair_rule(x):
        def pair_pullback(dy):
            return (dy[0][0] * 2.0,)
        return ([x * 2.0],), pair_pullback

    def use_pair(x):
        return pair(x)[0][0] * x

    assert mo.grad(use_pair)(1.5) == pytest.approx(2.0 * 1.5 + 2.0 * 1.5)


def test_nested_augmented_targets_evaluate_each_part_once():
    A.NESTED_CALLS.clear()
    expected = A.nested_augmented_targets(1.5)
    plain_calls = len(A.NESTED_CALLS)
    A.NESTED_CALLS.clear()
    value, g = mo.value_and_grad(A.nested_augmented_targets)(1.5)
    assert len(A.NESTED_CALLS) == plain_calls == 6
    assert value == pytest.approx(expected)
    mo.testing.check_grads(A.nested_augmented_targets, (1.5,), rtol=1e-6, atol=1e-8)


def test_calls_in_loop_and_if_tests_are_differentiated_and_run_as_often_as_in_python():
    A.LOOP_CALLS.clear()
    expected = A.loops_whose_tests_call_writers(0.5)
    plain_calls = len(A.LOOP_CALLS)
    A.LOOP_CALLS.clear()
    value, _ = mo.value_and_grad(A.loops_whose_tests_call_writers)(0.5)
    assert len(A.LOOP_CALLS) == plain_calls
    assert value == pytest.approx(expected)
    mo.testing.check_grads(A.loops_whose_tests_call_writers, (0.5,), rtol=1e-5, atol=1e-8)
