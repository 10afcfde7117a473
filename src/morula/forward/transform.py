"""Turn a Python function into its forward-mode (tangent) function, once, and cache it.

In: a function object. Out: ``jvp_of(fn)`` -> ``(jvp_function, layout)``, where
``jvp_function(T, tangents_by_parameter, closure_tangents, *args, **kwargs)``
returns ``(out, tangent)`` and ``layout`` says how call arguments bind to
parameters. Compiled once per (code object, rules version), like reverse mode;
the frontend (source, fence, core form) is shared with reverse mode.
"""

import threading
import types

from ..errors import MorulaError
from ..frontend.source import SourceNotFoundError
from ..reverse.transform import (_show_placeholders, annotated_source, build_prototype, compiled_once,
                                 core_rewrites, instantiate)
from ..rules.registry import REGISTRY
from .codegen import HELPERS, ForwardCodegen

_code_cache = {}
_lock = threading.RLock()
ATTR = "__morula_forward__"
_OP_PREFIX = "__MOFO__op_"   # generated code's names for the bound op wrappers


class Compiled:
    __slots__ = ("code", "freevars", "generated", "function", "helper_cells", "layout")

    def __init__(self, code, generated, function, helper_cells, layout):
        self.code = code
        self.generated = generated
        self.function = function
        self.freevars = code.co_freevars
        self.helper_cells = helper_cells
        self.layout = layout


def compile_function(fn):
    return compiled_once(_code_cache, fn, _compile)


def _compile(fn):
    from . import runtime
    core_fn, generated, prototype, cells = build_prototype(
        fn, ForwardCodegen, HELPERS, runtime.helper_values, _OP_PREFIX, rewrite=core_rewrites)
    a = core_fn.args
    layout = ([p.arg for p in a.posonlyargs + a.args], a.vararg.arg if a.vararg else None,
              {p.arg for p in a.kwonlyargs}, a.kwarg.arg if a.kwarg else None)
    return Compiled(prototype.__code__, generated, core_fn, cells, layout)


def _compiled_or_none(fn):
    """``compile_function(fn)``, or None for library code morula cannot read or lower."""
    try:
        return compile_function(fn)
    except (SourceNotFoundError, MorulaError, SyntaxError):
        from ..reverse.runtime import _is_library_code
        if not _is_library_code(fn.__code__):
            raise
        return None


def _like(fn, code, freevars, helper_cells):
    """A function of generated ``code`` with ``fn``'s globals, defaults and closure cells (so it
    reads the user's captured variables live), the helpers in the other cells."""
    closure = None
    if freevars:
        user_cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or ()))
        closure = tuple(user_cells[name] if name in user_cells else helper_cells[name] for name in freevars)
    out = types.FunctionType(code, fn.__globals__, code.co_name, fn.__defaults__, closure)
    if fn.__kwdefaults__:
        out.__kwdefaults__ = dict(fn.__kwdefaults__)
    cells = fn.__dict__.get("__morula_cells__")
    if cells is not None:   # the same cells: an outer reverse sweep keeps their cotangents there
        out.__morula_cells__ = cells
    return out


def jvp_of(fn):
    """``(jvp_function, layout)`` for ``fn``, built once per function object; ``(None, None)`` for
    library code whose source morula cannot read or lower (it is then run as a constant)."""
    cached = fn.__dict__.get(ATTR)
    version = REGISTRY.version
    if cached is not None and cached[0] == version and cached[2] is fn.__code__:
        return cached[1], cached[3]
    entry = _compiled_or_none(fn)
    jvp_fn = None if entry is None else _like(fn, entry.code, entry.freevars, entry.helper_cells)
    layout = None if entry is None else entry.layout
    try:
        # a failure is remembered too: library code is not re-parsed on every call
        fn.__dict__[ATTR] = (version, jvp_fn, fn.__code__, layout)
    except (AttributeError, TypeError):
        pass
    return jvp_fn, layout


_NESTED_ATTR = "__morula_forward_nested__"
_nested_cache = {}   # id(code) -> (code, rules version, (code object of the jvp function, layout))
_counter = [0]


def nested_jvp_of(fn):
    """Like ``jvp_of``, but the generated code is compiled from its own source text, registered
    with ``linecache`` under a file name of its own, so that an outer transform can read and
    differentiate it (derivatives of derivatives)."""
    import linecache
    cached = fn.__dict__.get(_NESTED_ATTR)
    version = REGISTRY.version
    if cached is not None and cached[0] == version and cached[2] is fn.__code__:
        return cached[1], cached[3]
    from . import runtime
    key = id(fn.__code__)
    hit = _nested_cache.get(key)
    if hit is not None and hit[0] is fn.__code__ and hit[1] == version:
        code, layout, freevars, helper_cells = hit[2]
    else:
        entry = _compiled_or_none(fn)
        if entry is None:
            return None, None
        compilable = {name: _slices_as_calls(node) for name, node in entry.generated.placeholders.items()}
        text = "\n".join(_show_placeholders(line, compilable)
                         for line in entry.generated.text.splitlines()) + "\n"
        with _lock:
            _counter[0] += 1
            filename = f"<morula forward code of {fn.__qualname__} #{_counter[0]}>"
        linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
        prototype, helper_cells = instantiate(
            compile(text, filename, "exec"), fn.__globals__, entry.generated,
            len(entry.function.freevars), HELPERS, runtime.helper_values, _OP_PREFIX)
        code, layout, freevars = prototype.__code__, entry.layout, prototype.__code__.co_freevars
        _nested_cache[key] = (fn.__code__, version, (code, layout, freevars, helper_cells))
    jvp_fn = _like(fn, code, freevars, helper_cells)
    try:
        fn.__dict__[_NESTED_ATTR] = (version, jvp_fn, fn.__code__, layout)
    except (AttributeError, TypeError):
        pass
    return jvp_fn, layout


def _slices_as_calls(node):
    """A copy of ``node`` that unparses to valid Python on its own: index expressions
    (``1:-1``, ``(1:, 2)``) become ``slice(...)`` calls."""
    import ast
    import copy

    class SliceToCall(ast.NodeTransformer):
        def visit_Slice(self, s):
            self.generic_visit(s)
            parts = [p if p is not None else ast.Constant(None) for p in (s.lower, s.upper, s.step)]
            return ast.Call(ast.Name("slice", ast.Load()), parts, [])

    out = SliceToCall().visit(copy.deepcopy(node))
    return ast.fix_missing_locations(out)


def generated_source(fn):
    """Readable forward-mode code of ``fn`` with the user's lines as comments."""
    return annotated_source(compile_function(fn))
