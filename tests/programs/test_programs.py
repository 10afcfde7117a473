"""Whole programs (control flow, calls, containers, classes) checked against finite differences."""
import math

import numpy as np
import pytest

import morula as mo

from . import corpus_classes as S
from . import corpus_containers as K
from . import corpus_control as C
from . import corpus_functions as F

rng = np.random.default_rng(0)

CASES = {
    # control flow
    "branches_then": (C.branches, (1.5, 2.0)),
    "branches_gt": (C.branches, (3.0, 2.0)),
    "branches_elif": (C.branches, (-1.0, 2.0)),
    "boolean_ops_pos": (C.boolean_ops, (1.5, 2.0)),
    "boolean_ops_neg": (C.boolean_ops, (-1.5, 2.0)),
    "value_and_or": (C.value_and_or, (1.5, 2.0)),
    "for_range": (lambda x: C.for_range(x, 8), (0.7,)),
    "for_zip_enumerate_reversed": (C.for_list_zip_enumerate, ([1.0, 2.0, 3.0], (0.5, -1.0, 2.0))),
    "for_array_rows": (C.for_rows, (np.arange(6.0).reshape(2, 3),)),
    "for_dict_items": (C.dict_items_loop, ({"w1": 2.0, "b": 1.0, "w2": -1.0},)),
    "while": (C.while_loop, (2.0,)),
    "break_continue_else_broken": (C.break_continue, ([1.0, -2.0, 3.0, 20.0, 4.0],)),
    "break_continue_else_runs": (C.break_continue, ([1.0, -2.0, 3.0],)),
    "nested_loops": (C.nested_loops, (np.arange(6.0).reshape(2, 3),)),
    "taylor_sine": (C.taylor_sine, (0.8,)),
    "return_in_for_taken": (C.early_return_in_for, ([1.5, 2.0, 3.0, 4.0], 5.0)),
    "return_in_for_not_taken": (C.early_return_in_for, ([1.5, 2.0], 50.0)),
    "loop_else": (C.loop_else_no_break, ([1.0, 2.0],)),
    "nested_break": (C.nested_break, (np.array([[0.1, 0.2, 0.9, 0.3], [0.1, 0.1, 0.2, 0.3]]),)),
    "data_dependent_trip_count": (C.data_dependent_trip, (300.0,)),
    "passthrough_statements": (C.with_and_passthrough, (0.5,)),
    # calls
    "helper_defaults_keywords": (F.calls_helper, (1.3,)),
    "recursive_power": (lambda x: F.power(x, 5), (1.1,)),
    "recursive_nested_sum": (F.nested_sum, ([1.0, [2.0, [3.0, 0.5]], 4.0],)),
    "double_recursion": (lambda x: F.fib_like(x, 6), (0.7,)),
    "star_args_kwargs": (F.calls_variadic, (1.2, 0.4)),
    "keyword_only": (F.calls_keyword_only, (1.2, 0.4)),
    "closure_reads_enclosing": (F.closure_reader, (0.6, 1.4)),
    "lambda_higher_order": (F.lambda_and_higher_order, (0.6, 1.4)),
    "returned_closure": (F.returns_closure, (0.6, 1.4)),
    "dict_dispatch_sin": (lambda x: F.dispatch_table(x, "sin"), (0.4,)),
    "dict_dispatch_cube": (lambda x: F.dispatch_table(x, "cube"), (0.4,)),
    "functools_partial": (F.with_partial, (0.6, 1.4)),
    "comprehensions_generators": (F.comprehension_sum, ([1.0, -2.0, 3.0], 0.7)),
    "nested_comprehension": (F.nested_comprehension, ([[1.0, 2.0], [3.0, 4.0]],)),
    "builtins_and_math": (F.builtins_use, (1.3, 0.7)),
    "default_array_parameter": (F.default_array_param, (np.array([0.3, 0.4]),)),
    "map_sorted": (F.calls_map_sorted, ([1.0, -3.0, 2.0],)),
    "lru_cache_decorated_helper": (F.uses_lru_cache, (1.7,)),
    "defaults_from_enclosing_variables": (F.default_from_enclosing, (1.3,)),
    "checkpoint_of_a_closure": (F.checkpointed_closure, (2.0, np.array([0.1, 0.2]))),
    "checkpointed_closure_called_twice": (F.checkpointed_closure_called_twice, (0.7, np.array([0.3, -0.2, 0.5]))),
    # containers
    "tuple_in_out": (K.tuple_in_out, ((1.5, 2.0),)),
    "list_methods": (lambda x: K.list_building(x, 4), (1.3,)),
    "list_unpack_slice": (K.list_indexing_slicing, ([1.0, 2.0, 3.0, 4.0],)),
    "dict_of_params": (K.dict_params, ({"W": rng.standard_normal((3, 2)), "b": rng.standard_normal(3),
                                        "scale": 1.5}, np.array([0.5, -1.0]))),
    "dict_state_loop": (K.dict_state_loop, (1.0,)),
    "dict_methods": (K.dict_mutation, (1.5,)),
    "list_setitem": (K.list_setitem, (1.5,)),
    "nested_containers": (K.nested_containers, ({"pairs": {"a": (1.0, 2.0), "b": (3.0, 0.5)},
                                                 "list": [0.0, [2.5]]},)),
    "dict_output": (K.returns_dict, (1.5,)),
    "stack_list_of_arrays": (K.stack_list_of_arrays, (np.array([1.0, 2.0]),)),
    "starred_displays": (K.star_display, (1.5, 2.0)),
    "array_from_nested_list": (K.array_from_list, (1.5, 2.0)),
    # classes
    "dual_numbers_operator_overloading": (S.dual_polynomial, (1.5, 0.5)),
    "measurement_property": (S.measurement_product, (2.0, 0.1, 3.0, 0.2)),
    "callable_layer_object": (S.layer_loss, (S.Linear(rng.standard_normal((3, 2)), rng.standard_normal(3)),
                                             np.array([0.5, -1.0]))),
    "dataclass_argument": (S.dataclass_loss, (S.Params(1.5, 0.5, np.array([1.0, 2.0])), 0.7)),
    "dataclass_constructed": (S.dataclass_built_inside, (0.7,)),
    "namedtuple": (S.namedtuple_loss, (S.Point(1.5, 2.0),)),
    "method_mutates_self": (S.method_mutates_self, (1.5,)),
    "recurrent_cell_in_loop": (S.rnn_loss, (rng.standard_normal((3, 2)), rng.standard_normal((3, 3)),
                                            [rng.standard_normal(2) for _ in range(4)])),
    "inheritance_super": (S.inheritance, (1.5, 0.7)),
    "static_class_methods": (S.static_and_class_methods, (1.5,)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_reverse_matches_finite_differences(name, capsys):
    f, args = CASES[name]
    mo.testing.check_grads(f, args)


def test_taylor_sine_gradient_is_cosine(capsys):
    for x in (0.1, 0.8, 2.5):
        assert mo.grad(C.taylor_sine)(x) == pytest.approx(math.cos(x), abs=1e-11)
    assert "terms:" in capsys.readouterr().out   # print inside the differentiated function ran


def test_gradient_of_containers_mirrors_structure():
    g = mo.grad(K.dict_params)({"W": np.ones((3, 2)), "b": np.zeros(3), "scale": 2.0}, np.array([0.5, -1.0]))
    assert set(g) == {"W", "b", "scale"}
    assert g["W"].shape == (3, 2) and g["b"].shape == (3,) and g["scale"] == 2.0
    g = mo.grad(K.tuple_in_out.__wrapped__ if hasattr(K.tuple_in_out, "__wrapped__") else
                (lambda p: K.tuple_in_out(p)[0]))((1.5, 2.0))
    assert isinstance(g, tuple) and g == (2.0, 1.5)
    g = mo.grad(lambda xs: xs[0] * xs[1])([3.0, 4.0, 5.0])
    assert isinstance(g, list) and g == [4.0, 3.0, 0.0]


def test_gradient_of_objects_mirrors_attributes():
    p = S.Params(1.5, 0.5, np.array([1.0, 2.0]))
    g = mo.grad(S.dataclass_loss)(p, 0.7)
    assert isinstance(g, S.Params)
    assert g.w == pytest.approx(2 * (1.5 * 0.7 + 0.5) * 0.7)
    assert g.b == pytest.approx(2 * (1.5 * 0.7 + 0.5))
    np.testing.assert_allclose(g.scale, [0.7, 0.7])
    g = mo.grad(S.namedtuple_loss)(S.Point(1.5, 2.0))
    assert isinstance(g, S.Point)
    layer = S.Linear(np.ones((3, 2)), np.zeros(3))
    g = mo.grad(S.layer_loss)(layer, np.array([0.5, -1.0]))
    assert g.W.shape == (3, 2) and g.b.shape == (3,)


def test_closure_gradient_reaches_captured_value():
    # d/da [a*x + sin(a) + a*x^2 + sin(a)]
    a, x = 0.6, 1.4
    expected = x + math.cos(a) + x * x + math.cos(a)
    assert mo.grad(F.closure_reader)(a, x) == pytest.approx(expected)


def test_integer_arithmetic_carries_no_gradient():
    def f(x, n):
        k = n * 2 + 1
        return x * k

    assert mo.grad(f)(2.0, 3) == 7.0


def test_rrule_on_a_method_is_used_for_instance_calls():
    @mo.rrule(F.WithRuledMethod.double)
    def double_rule(self):
        return 2.0 * self.v, lambda g: (mo.ObjectCotangent({"v": 100.0 * g}),)

    try:
        assert mo.grad(F.calls_ruled_method)(1.0) == 300.0
    finally:
        from morula.rules.registry import REGISTRY
        del REGISTRY.functions[F.WithRuledMethod.double]
        REGISTRY._changed()


def test_singular_points_of_python_floats_follow_numpy():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert mo.grad(F.singular_python_floats)(0.0) == float("inf")
        assert mo.grad(lambda x: x ** 0.0)(0.0) == 0.0


def test_integer_output_has_zero_gradient():
    assert mo.grad(lambda x: np.int64(3))(1.0) == 0.0
