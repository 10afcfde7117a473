"""Turn a Python function into its reverse-mode forward function, once, and cache it.

In: a function object. Out: ``forward_of(fn)``: a Python function with
``fn``'s signature returning ``(out, back)``. The compiled code is cached per
(code object, rules version); the function object built from it per user
function object (closures get their own cells, so captured variables are
read live). Globals are the user's module globals: read live at run time.
"""

import ast
import threading
import types

from ..errors import UnsupportedSyntaxError
from ..frontend import fence
from ..frontend.normalize import normalize
from ..frontend.source import function_source
from ..rules.registry import REGISTRY
from . import shadow
from .codegen import HELPERS, ReverseCodegen
from .inline import inline_calls
from .scalar_calls import inline_scalar_calls

_code_cache = {}      # id(code) -> (code, rules version, Compiled)
_lock = threading.RLock()
ATTR = "__morula_reverse__"   # on the user's function: (rules version, forward, code, positional count)


class Compiled:
    __slots__ = ("code", "freevars", "generated", "function", "param_info", "helper_cells")

    def __init__(self, code, generated, function, helper_cells):
        self.code = code
        self.generated = generated
        self.function = function
        self.freevars = code.co_freevars
        self.helper_cells = helper_cells


def compile_function(fn):
    """Compile (or fetch from the cache) the reverse-mode code of ``fn``'s code object."""
    return compiled_once(_code_cache, fn, _compile)


def _compile(fn):
    from . import runtime
    core_fn, generated, prototype, cells = build_prototype(
        fn, ReverseCodegen, HELPERS, runtime.helper_values, "_mo_op_", rewrite=core_rewrites)
    shadow.register_literals(prototype.__code__)
    return Compiled(prototype.__code__, generated, core_fn, cells)


def core_rewrites(core_fn, fn):
    """The rewrites of the core form both modes' code generators run: helpers inlined, then
    one-argument scalar functions called inline. Returns the objects the generated code binds."""
    bound = inline_calls(core_fn, fn)
    return inline_scalar_calls(core_fn, fn, bound)


def compiled_once(cache, fn, compile_):
    """``compile_(fn)``, built once per (code object of ``fn``, rules version) and kept in
    ``cache``; both modes' compilers go through here. Keyed by identity: equal code objects from
    different files must keep their own file names; the entry holds the code object alive, so
    ids stay unique. Built under a lock, re-checked there (threads)."""
    code_object, version = fn.__code__, REGISTRY.version
    key = id(code_object)
    cached = cache.get(key)
    if cached is not None and cached[0] is code_object and cached[1] == version:
        return cached[2]
    with _lock:
        cached = cache.get(key)
        if cached is not None and cached[0] is code_object and cached[1] == version:
            return cached[2]
        entry = compile_(fn)
        cache[key] = (code_object, version, entry)
        return entry


def build_prototype(fn, codegen_class, helper_names, helper_values, op_prefix, rewrite=None):
    """Lower ``fn`` through the shared frontend with ``codegen_class`` and build one
    instance of the generated function, its helpers bound, its user cells empty.

    Returns ``(core_fn, generated, prototype, helper_cells)``; both modes compile
    through here so that the frontend, line mapping and factory protocol agree.
    """
    info = function_source(fn)
    fence.check(info.node, info.filename, info.lines)
    core_fn = normalize(info, fn)
    if rewrite is not None:
        core_fn.bound = rewrite(core_fn, fn)
    generated = codegen_class(core_fn).generate()
    module = _parse_with_user_lines(generated, info.filename)
    prototype, cells = instantiate(compile(module, info.filename, "exec"), fn.__globals__, generated,
                                   len(core_fn.freevars), helper_names, helper_values, op_prefix)
    return core_fn, generated, prototype, cells


def instantiate(code, globals_, generated, n_user_freevars, helper_names, helper_values, op_prefix):
    """Run the generated module ``code`` and call its ``__mo_factory__`` with the runtime
    helpers and op wrappers bound (user cells left empty). Returns ``(prototype, helper_cells)``."""
    namespace = {}
    exec(code, globals_, namespace)
    helpers = helper_values(generated.op_names)
    args = ([helpers[h] for h in helper_names]
            + [helpers[f"{op_prefix}{o}"] for o in sorted(generated.op_names)]
            + list(generated.bound.values())
            + [None] * n_user_freevars)
    prototype = namespace["__mo_factory__"](*args)
    return prototype, dict(zip(prototype.__code__.co_freevars, prototype.__closure__ or ()))


def forward_of(fn):
    """The forward function for ``fn`` (a plain function object), built once per function object."""
    cached = fn.__dict__.get(ATTR) if hasattr(fn, "__dict__") else None
    version = REGISTRY.version
    if cached is not None and cached[0] == version and cached[2] is fn.__code__:
        return cached[1]
    entry = compile_function(fn)
    closure = None
    if entry.freevars:
        user_cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or ()))
        closure = tuple(user_cells[name] if name in user_cells else entry.helper_cells[name]
                        for name in entry.freevars)
    forward = types.FunctionType(entry.code, fn.__globals__, entry.code.co_name, fn.__defaults__, closure)
    if fn.__kwdefaults__:
        forward.__kwdefaults__ = dict(fn.__kwdefaults__)
    forward.__morula_compiled__ = entry
    code = fn.__code__
    simple = code.co_argcount if not code.co_flags & 0x0C and not code.co_kwonlyargcount \
        and not entry.function.mutated_params else -1
    try:
        fn.__dict__[ATTR] = (version, forward, code, simple)
    except (AttributeError, TypeError):
        pass
    return forward


def _parse_with_user_lines(generated, filename):
    """Parse the generated text, give every node the user's line, splice in the user's own
    expressions/statements (placeholders) with their original positions."""
    tree = ast.parse(generated.text, filename)
    line_map = generated.line_map
    placeholders = generated.placeholders
    stack = [tree]
    pop, push = stack.pop, stack.append
    AST, Name, Expr, With = ast.AST, ast.Name, ast.Expr, ast.With
    while stack:
        node = pop()
        line = getattr(node, "lineno", None)
        if line is not None:
            line = line_map.get(line, line)
            node.lineno = node.end_lineno = line
        fields = node._fields
        if type(node) is With:
            item = node.items[0].context_expr
            if type(item) is Name and item.id in placeholders:
                node.items = _fresh(placeholders[item.id]).items   # the user's own, positions kept
                fields = ("body",)
        for field in fields:
            value = getattr(node, field)
            if type(value) is list:
                for i, item in enumerate(value):
                    if isinstance(item, AST):
                        replacement = _placeholder(item, placeholders, Name, Expr)
                        if replacement is not None:
                            value[i] = replacement
                        else:
                            push(item)
            elif isinstance(value, AST):
                replacement = _placeholder(value, placeholders, Name, Expr)
                if replacement is not None:
                    setattr(node, field, replacement)
                else:
                    push(value)
    return tree


def _placeholder(node, placeholders, Name, Expr):
    t = type(node)
    if t is Name:
        original = placeholders.get(node.id)
        return _fresh(original) if original is not None else None
    if t is Expr and type(node.value) is Name and node.value.id in placeholders:
        return _fresh(placeholders[node.value.id])
    return None


def _fresh(node):
    import copy
    return copy.deepcopy(node)


def generated_source(fn):
    """Readable reverse-mode code of ``fn`` with the user's lines as comments."""
    return annotated_source(compile_function(fn))


def annotated_source(entry):
    """The generated code of a compiled entry (either mode), placeholders shown as the
    user's expressions and each user line above the code that came from it."""
    generated = entry.generated
    info = entry.function.source
    out, last = [], None
    for number, text in enumerate(generated.text.splitlines(), start=1):
        line = generated.line_map.get(number)
        if line != last and line is not None:
            indent = text[: len(text) - len(text.lstrip())]
            out.append(f"{indent}# line {line}: {info.line(line).strip()}")
            last = line
        out.append(_show_placeholders(text, generated.placeholders))
    return "\n".join(out) + "\n"


def _show_placeholders(text, placeholders):
    if "__mo_" not in text:
        return text
    for name, node in placeholders.items():
        if name in text:
            if isinstance(node, ast.With):
                shown = ", ".join(ast.unparse(i) for i in node.items)
            else:
                shown = ast.unparse(node)
                if isinstance(node, (ast.FunctionDef,)) or "\n" in shown:
                    indent = text[: len(text) - len(text.lstrip())]
                    shown = shown.replace("\n", "\n" + indent)
            text = text.replace(name, shown)
    return text


__all__ = ["compile_function", "forward_of", "generated_source", "UnsupportedSyntaxError"]
