"""Regression cases from adversarial testing, against finite differences."""
import numpy as np
import pytest

import morula as mo

from . import corpus_adversarial as A

CASES = {
    "builtin_protocols_abs_float_pow": (A.builtin_protocols, (3.0, 4.0)),
    "setattr_vars_dict_getattr": (A.dynamic_attributes, (0.7,)),
    "container_inplace_operators": (A.container_inplace_operators, (0.7,)),
    "closure_variable_rebound_after_def": (A.closure_rebound, (0.7,)),
    "defaults_from_expressions": (A.defaults_from_expressions, (0.7,)),
    "lambdas_in_comprehension": (A.lambdas_in_comprehension, (0.7,)),
    "writes_into_captured_containers": (A.writes_into_captured_containers, (0.7,)),
    "nested_plain_objects": (A.nested_objects, (A.World([A.Particle(0.3), A.Particle(0.5)]),)),
    "floats_updated_in_place_but_unused": (A.floats_updated_in_place_but_unused, (0.7,)),
    "namedtuple_iteration_and_methods": (A.namedtuple_iteration_and_methods, (0.7,)),
    "list_subclass": (A.list_subclass, (0.7,)),
    "array_writes_from_lists": (A.array_writes_from_lists, (0.7,)),
    "builtins_keywords_and_itertools": (A.builtins_with_keywords_and_itertools, (0.7,)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_adversarial_case(name):
    f, args = CASES[name]
    mo.testing.check_grads(f, args, rtol=1e-5, atol=1e-7)


def test_nested_plain_object_gradient_has_structure():
    g = mo.grad(A.nested_objects)(A.World([A.Particle(0.3), A.Particle(0.5)]))
    assert [p.pos for p in g.ps] == [pytest.approx(0.6), pytest.approx(1.0)]
