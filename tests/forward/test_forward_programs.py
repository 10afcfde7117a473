"""Every whole-program case of the reverse-mode suites, in forward mode too.

Each case is checked with ``check_grads(modes=("fwd", "rev"))``: forward mode against central
differences, and forward against reverse through the inner-product identity.
"""
import pytest

import morula as mo

from tests.programs import test_adversarial, test_mutation, test_programs, test_typical_programs

ALL = {}
for module, cases in ((test_programs, test_programs.CASES), (test_mutation, test_mutation.CASES),
                      (test_adversarial, test_adversarial.CASES),
                      (test_typical_programs, test_typical_programs.CASES),
                      (test_typical_programs, test_typical_programs.CASES2)):
    for name, case in cases.items():
        ALL[f"{module.__name__.split('.')[-1]}::{name}"] = case


@pytest.mark.parametrize("name", sorted(ALL))
def test_forward_matches_finite_differences_and_reverse(name, capsys):
    f, args = ALL[name]
    mo.testing.check_grads(f, args, modes=("fwd", "rev"), rtol=1e-5, atol=1e-6)
