"""The core form: a small language that every supported Python function is lowered into.

In: built by ``normalize``. Out: read by the code generators.

Atoms are ``Name`` (a variable) or ``Const`` (a literal). Each statement
carries the user's source ``line``. Every differentiable computation is one
call-like statement with atom arguments; everything that cannot carry a
derivative (comparisons, index expressions, f-strings, branch tests) stays a
plain Python expression (``Native``) evaluated as written.
"""

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass(frozen=True)
class Name:
    id: str


@dataclass(frozen=True)
class Const:
    value: Any


@dataclass
class Op:
    """``target = <runtime op>(*args)``: operators, indexing, attributes, displays."""
    target: Optional[str]
    op: str
    args: list
    line: int


@dataclass
class Call:
    """``target = func(*args, **dict(kwargs))``, or the star form ``func(*argtuple, **kwdict)``.

    ``local``: the callee is a local variable (its closure may need a cotangent).
    """
    target: Optional[str]
    func: Any
    args: list
    kwargs: list                 # [(name, atom)]
    line: int
    local: bool
    argtuple: Any = None         # star form
    kwdict: Any = None


@dataclass
class Method:
    """``target = obj.name(*args, **kwargs)``; ``local``: obj is a local variable (gets a cotangent)."""
    target: Optional[str]
    obj: Any
    name: str
    args: list
    kwargs: list
    line: int
    local: bool
    argtuple: Any = None
    kwdict: Any = None
    via_super: bool = False    # super().name(...): resolved from the defining class's parent


@dataclass
class ScalarCall:
    """``target = f(arg)`` for a one-argument function with a known scalar derivative (``math.sin``):
    inline float code behind a test that ``callee`` (a global name or ``module.name``, as
    written) still is ``function`` (a bound name) and ``arg`` is a float; ``call`` (the
    original Call/Method statement) otherwise. ``derivative`` is a bound name too."""
    target: str
    callee: str
    function: str
    derivative: str
    arg: Any
    call: Any
    line: int


@dataclass
class Assign:
    target: str
    value: Any
    line: int


@dataclass
class Unpack:
    """``t0, t1, ... = value`` (distinct plain names): Python unpacks; the reverse rebuilds the
    container's cotangent from the targets' adjoints."""
    targets: list
    value: Any
    line: int


@dataclass
class Native:
    """``target = <python expression>``, evaluated as written; never differentiated."""
    target: str
    expr: Any
    line: int


@dataclass
class Passthrough:
    """A statement run as written in the forward pass (print, assert, raise, import, ...)."""
    stmt: Any
    line: int


@dataclass
class If:
    test: Any            # python expression
    body: list
    orelse: list
    line: int


@dataclass
class For:
    target: str
    iter: Any            # atom
    body: list
    line: int
    exit_test: Any = None   # python expression: break out at the end of the body when true


@dataclass
class While:
    test: Any
    body: list
    line: int
    exit_test: Any = None


@dataclass
class Def:
    """``target = <closure>``: a nested def or lambda, created as written; ``captured`` lists the
    enclosing locals it reads (their adjoints receive the closure's cotangent)."""
    target: str
    node: Any            # ast.FunctionDef, or ast.Lambda expression
    captured: list
    line: int


@dataclass
class With:
    items: list          # ast.withitem, evaluated as written
    body: list
    line: int


@dataclass
class Return:
    value: Any
    line: int


@dataclass
class Function:
    name: str
    args: Any            # ast.arguments (defaults are not used)
    params: list         # parameter names, in the order of cotangents returned
    body: list
    locals: set
    freevars: tuple
    filename: str
    first_line: int
    source: Any = field(default=None, repr=False)
    mutated_params: list = field(default_factory=list)   # [(index, name, line)] written in place
    bound: dict = field(default_factory=dict)   # name -> object the generated code reads (inlining guards)

# Ops whose forward pass changes their first argument in place, so their pullbacks must
# always run (they restore what they overwrote) and the first argument is rebound.
MUTATING_OPS = frozenset({"setitem", "setattr", "setattr_back", "delitem", "list_append",
                          "iadd", "isub", "imul", "itruediv", "ipow", "imatmul", "ifloordiv", "imod",
                          "ior", "iand", "ixor", "ilshift", "irshift"})
