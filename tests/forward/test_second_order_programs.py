"""Every whole-program case, differentiated twice: forward over forward and reverse over forward
(the machinery of mo.hessian, mo.hvp and grad of grad), against finite differences of the first
derivative (check_grads(order=2))."""
import pytest

import morula as mo
from tests.forward.test_forward_programs import ALL

# Known gaps of reverse over forward (loud errors, or -- marked "wrong" -- results that differ);
# docs/guide.md "Known problems" lists them.
KNOWN_REVERSE_OVER_FORWARD = {}


@pytest.mark.parametrize("name", sorted(ALL))
def test_forward_over_forward(name, capsys):
    f, args = ALL[name]
    mo.testing.check_grads(f, args, modes=("fwd",), order=2, rtol=1e-4, atol=1e-6, directions=1)


@pytest.mark.parametrize("name", sorted(ALL))
def test_reverse_over_forward(name, capsys):
    if name in KNOWN_REVERSE_OVER_FORWARD:
        pytest.xfail(KNOWN_REVERSE_OVER_FORWARD[name])
    f, args = ALL[name]
    mo.testing.check_grads(f, args, modes=("rev",), order=2, rtol=1e-4, atol=1e-6, directions=1)
