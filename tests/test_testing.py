"""Tests of ``morula.testing.check_rule``: it passes correct rules and catches wrong ones."""

import numpy as np
import pytest

import morula
from morula.rules.registry import REGISTRY
from morula.testing import check_rule

rng = np.random.default_rng(0)


# Functions with hand-written rules registered here (not NumPy's: the registry is shared).
def scale_by_two(x):
    return 2.0 * x


def scale_by_three(x):
    return 3.0 * x


def weighted(x, w):
    return x * w


def to_float64(x):
    return np.asarray(x, dtype=np.float64) * 1.0


def copy_list(values):
    return np.array(values) * 1.0


def mutates(x):
    return x * 1.0


def constant_claim(x):
    return np.sin(x)


def three_cotangents(x):
    return x + 0.0


@morula.rrule(scale_by_two)
def _scale_by_two_rule(x):
    return scale_by_two(x), lambda dy: (2.0 * dy,)


@morula.rrule(scale_by_three)
def _wrong_rule(x):
    return scale_by_three(x), lambda dy: (2.0 * dy,)  # deliberately wrong: should be 3 dy


@morula.rrule(weighted)
def _weighted_rule(x, w):
    return weighted(x, w), lambda dy: (dy * w, None)  # forgets w's cotangent


@morula.rrule(to_float64)
def _dtype_rule(x):
    return to_float64(x), lambda dy: (np.asarray(dy, dtype=np.float64),)  # float32 arg gets float64


@morula.rrule(copy_list)
def _list_rule(values):
    return copy_list(values), lambda dy: (np.asarray(dy),)  # a list must get a list back


@morula.rrule(mutates)
def _mutating_rule(x):
    def pullback(dy):
        dy *= 2.0  # writes into the caller's cotangent (the result is still right)
        return (dy / 2.0,)
    return mutates(x), pullback


@morula.rrule(constant_claim)
def _constant_rule(x):
    return constant_claim(x), None  # claims there is no derivative


@morula.rrule(three_cotangents)
def _count_rule(x):
    return three_cotangents(x), lambda dy: (dy, None, None)


def test_correct_numpy_rules_pass():
    x = rng.standard_normal((2, 3))
    cts = check_rule(np.sin, x)
    assert len(cts) == 1 and cts[0].shape == (2, 3)
    check_rule(np.sum, x, axis=1, keepdims=True)
    check_rule(np.multiply, x, rng.standard_normal(3))
    check_rule(np.matmul, x, rng.standard_normal((3, 2)))
    check_rule(scale_by_two, x)


def test_dtypes_and_python_numbers():
    cts = check_rule(np.exp, rng.standard_normal(3).astype(np.float32))
    assert cts[0].dtype == np.float32
    cts = check_rule(np.exp, 0.5)
    assert type(cts[0]) is float
    cts = check_rule(np.exp, 0.5 + 0.25j)
    assert type(cts[0]) is complex
    z = rng.standard_normal(3) + 1j * rng.standard_normal(3)
    cts = check_rule(np.sin, z)
    assert cts[0].dtype == np.complex128
    check_rule(np.abs, z)  # real-valued function of a complex input


def test_methods_and_attributes():
    x = rng.standard_normal((2, 3))
    check_rule((np.ndarray, "sum"), x, 0)
    check_rule(np.ndarray.sum, x, axis=1)
    check_rule((np.ndarray, "T"), x)


def test_keywords_naming_positional_parameters_are_differentiated():
    x = rng.standard_normal(4)
    cts = check_rule(np.average, x, weights=rng.uniform(0.5, 1.0, 4))
    assert len(cts) == 3 and cts[2].shape == (4,)  # (a, axis, weights)


def test_catches_a_wrong_cotangent():
    with pytest.raises(AssertionError, match=r"scale_by_three.*argument 0 is wrong"):
        check_rule(scale_by_three, rng.standard_normal(3))


def test_catches_a_missing_cotangent():
    with pytest.raises(AssertionError, match=r"argument 1 is wrong"):
        check_rule(weighted, rng.standard_normal(3), rng.standard_normal(3))


def test_catches_a_wrong_dtype_and_structure():
    with pytest.raises(AssertionError, match=r"dtype float64 for an argument of dtype float32"):
        check_rule(to_float64, rng.standard_normal(3).astype(np.float32))
    with pytest.raises(AssertionError, match=r"ndarray of length .* for a list"):
        check_rule(copy_list, [1.0, 2.0])


def test_catches_a_mutating_pullback():
    with pytest.raises(AssertionError, match="mutated the output cotangent"):
        check_rule(mutates, rng.standard_normal(3))


def test_catches_a_false_constant_and_a_wrong_count():
    with pytest.raises(AssertionError, match="is wrong"):
        check_rule(constant_claim, rng.standard_normal(3))
    with pytest.raises(AssertionError, match="3 cotangents for 1 positional"):
        check_rule(three_cotangents, rng.standard_normal(3))


def test_nondiff_rules_pass_where_the_derivative_is_zero():
    check_rule(np.floor, rng.uniform(0.1, 0.9, 4) + 2)
    check_rule(np.argmax, rng.standard_normal(4))


def test_no_rule_and_wrong_primal():
    def no_rule(x):
        return x

    with pytest.raises(AssertionError, match="no rule is registered"):
        check_rule(no_rule, 1.0)

    def primal(x):
        return x + 1.0

    REGISTRY.add_function(primal, lambda x: (x, lambda dy: (dy,)))  # forgets the + 1
    with pytest.raises(AssertionError, match="primal"):
        check_rule(primal, np.ones(2))


def test_options_are_not_passed_to_the_function():
    check_rule(np.sin, rng.standard_normal(3), check_eps=1e-5, check_seed=3, check_directions=1,
               check_rtol=1e-5)
