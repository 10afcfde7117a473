"""Generate docs/rules.md, the table of derivative rules, from morula's rule registry.

    python scripts/rules_table.py           # rewrite docs/rules.md
    python scripts/rules_table.py --check   # exit 1 if docs/rules.md is not what would be generated

The table lists every entry of ``morula.rules.registry.REGISTRY``: functions
(``REGISTRY.functions``: callable -> rule), methods of built-in types
(``REGISTRY.methods``: (type, name) -> rule) and attributes
(``REGISTRY.attributes``: (type, name) -> rule). Only morula's own rules are
listed: entries registered by user code (or by a test running in the same
process) are left out, so the table is the same wherever it is generated.
``tests/test_docs.py`` compares the file with ``render()`` so it cannot go stale.
"""

import argparse
import builtins
import difflib
import importlib
import pkgutil
import re
import sys
import sysconfig
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "rules.md"
TESTS = ROOT / "tests"
# files whose words do not count as "tested" (this table's own test mentions no rules)
IGNORED_TEST_FILES = {"test_docs.py"}

if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

# Namespaces searched for the name a user writes, as (prefix shown, module name); a bare
# prefix "" is a builtin (shown as `abs`). Optional libraries are searched when installed.
NAMESPACES = [
    ("", "builtins"),
    ("math", "math"),
    ("cmath", "cmath"),
    ("operator", "operator"),
    ("copy", "copy"),
    ("functools", "functools"),
    ("random", "random"),
    ("time", "time"),
    ("np", "numpy"),
    ("np.linalg", "numpy.linalg"),
    ("np.fft", "numpy.fft"),
    ("np.random", "numpy.random"),
    ("scipy.special", "scipy.special"),
    ("scipy.linalg", "scipy.linalg"),
    ("scipy.signal", "scipy.signal"),
    ("scipy.sparse", "scipy.sparse"),
    ("scipy.sparse.linalg", "scipy.sparse.linalg"),
    ("mo", "morula"),
]


def _load_rules():
    """Import morula and every module of ``morula.rules`` (also those registered lazily for
    optional libraries), so that all of morula's rules are registered. Returns the registry
    and the rule modules that could not be imported (their library is not installed)."""
    import morula  # noqa: F401
    import morula.rules
    missing = []
    for info in pkgutil.iter_modules(morula.rules.__path__):
        try:
            importlib.import_module(f"morula.rules.{info.name}")
        except ImportError as error:
            missing.append(f"morula.rules.{info.name} ({error})")
    from morula.rules.registry import REGISTRY
    return REGISTRY, missing


_library_roots = None


def _is_library(module_name):
    """Is ``module_name`` morula, the standard library or an installed package (not user code,
    such as a test module that registered a rule while running in the same process)?"""
    global _library_roots
    if not module_name:
        return True
    top = module_name.lstrip("_").split(".")[0]
    if top in ("builtins", "morula", "numpy"):
        return True
    module = sys.modules.get(module_name) or sys.modules.get(module_name.split(".")[0])
    filename = getattr(module, "__file__", None)
    if module is not None and filename is None:
        return True   # a built-in module
    if filename is None:
        return False
    if _library_roots is None:
        paths = sysconfig.get_paths()
        _library_roots = tuple({paths.get(k, "") for k in ("stdlib", "platstdlib", "purelib", "platlib")} - {""})
    return filename.startswith(_library_roots) or "site-packages" in filename or "dist-packages" in filename


def _short_module(module):
    """'numpy.random._generator' -> 'np.random', 'scipy.special._ufuncs' -> 'scipy.special'."""
    module = module or "builtins"
    parts = [p for p in module.split(".") if not p.startswith("_")] or [module.lstrip("_")]
    if parts[0] == "numpy":
        parts[0] = "np"
    return ".".join(parts)


def _alias_index():
    """id(object) -> list of names a user writes for it (`np.abs`, `abs`, `math.exp`, ...)."""
    index = {}
    for prefix, module_name in NAMESPACES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name, obj in vars(module).items():
            if name.startswith("_") or isinstance(obj, types.ModuleType):
                continue
            if isinstance(obj, type) and getattr(obj, "__name__", None) != name:
                continue   # type aliases (np.double, np.float128, ...) differ between platforms
            shown = f"{prefix}.{name}" if prefix else name
            index.setdefault(id(obj), []).append(shown)
    return index


def _is_nondiff(rule):
    name = getattr(rule, "__name__", "")
    return name.startswith("nondiff_") or name == "constant_method"


def _is_morula_rule(rule):
    return (getattr(rule, "__module__", "") or "").startswith("morula.")


def _is_engine_internal(fn):
    """morula's own machinery (the forward runtime, tangent memory, lookups) that has rules only so
    that derivatives of derivatives can run through it: not something users call."""
    module = getattr(fn, "__module__", None) or ""
    return module.startswith("morula.") and module != "morula.api"


def _function_rows(registry, aliases):
    rows = []
    for fn, rule in registry.functions.items():
        if not _is_morula_rule(rule) or _is_engine_internal(fn):
            continue   # registered by user code, or engine internals
        names = aliases.get(id(fn), [])
        own = getattr(fn, "__name__", None)
        if names:
            # the name the object calls itself comes first (np.absolute, not np.abs)
            names = sorted(names, key=lambda n: (n.rsplit(".", 1)[-1] != own, n.count("."), n))
            module = names[0].rsplit(".", 1)[0] if "." in names[0] else "builtins"
        else:
            module_name = getattr(fn, "__module__", None)
            owner = getattr(fn, "__self__", None)
            if module_name is None and owner is not None and not isinstance(owner, types.ModuleType):
                module_name = type(owner).__module__   # a bound method of a library object
            if not _is_library(module_name):
                continue   # e.g. mo.nondiff(user_function) run in the same process
            shown = getattr(fn, "__name__", None) or repr(fn)
            module = _short_module(module_name)
            names = [shown if module == "builtins" else f"{module}.{shown}"]
        rows.append((module, names[0], names[1:], rule, fn))
    return rows


def _member_rows(table):
    rows = []
    for (cls, name), rule in table.items():
        if not _is_morula_rule(rule) or not _is_library(cls.__module__) or cls.__module__.startswith("morula."):
            continue
        module = _short_module(cls.__module__)
        rows.append((module, f"{cls.__name__}.{name}", [], rule, (cls, name)))
    return rows


def _swept():
    """What the parametrized tests in ``tests/rules`` sweep against finite differences.

    A test function with at least one ``parametrize`` mark (over shapes, axes, dtypes, ...)
    sweeps every function it names: the callables among its parameter values, the dotted
    names in its source (``np.linalg.inv``) and in the source of module-level helpers it uses
    (``f_inv``), resolved in the test module's namespace; and every method it calls as
    ``.name(`` (reported as names). Module-level ``SWEPT`` collections count too.
    Returns ``(objects, method_names)``.
    """
    import inspect
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    objects, methods = set(), set()

    def add(value):
        try:
            hash(value)
        except TypeError:
            return
        objects.add(value)

    def flatten(value, depth=0):
        if depth > 4:
            return
        if isinstance(value, (list, tuple, set, frozenset)):
            if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], str):
                add(value)   # (class, "method")
            for v in value:
                flatten(v, depth + 1)
        elif type(value).__name__ == "ParameterSet":
            flatten(value.values, depth + 1)
        elif isinstance(value, dict):
            for v in value.values():
                flatten(v, depth + 1)
        elif callable(value) or isinstance(value, tuple):
            add(value)

    def scan_source(fn, namespace, seen):
        if fn in seen:
            return
        seen.add(fn)
        try:
            source = inspect.getsource(fn)
        except (OSError, TypeError):
            return
        methods.update(re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)\(", source))
        for dotted in set(re.findall(r"\b[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*", source)):
            head, *rest = dotted.split(".")
            value = namespace.get(head, getattr(builtins, head, None))
            for part in rest:
                value = getattr(value, part, None)
            if value is None:
                continue
            add(value)
            if inspect.isfunction(value) and getattr(value, "__module__", None) == namespace.get("__name__"):
                scan_source(value, namespace, seen)   # a helper defined in the test module

    for path in sorted((TESTS / "programs").glob("test_*.py")):   # whole programs may declare SWEPT
        flatten(list(vars(importlib.import_module(f"tests.programs.{path.stem}")).get("SWEPT", ())))
    for path in sorted((TESTS / "rules").glob("test_*.py")):
        module = importlib.import_module(f"tests.rules.{path.stem}")
        namespace = vars(module)
        flatten(list(namespace.get("SWEPT", ())))
        for name, fn in list(namespace.items()):
            marks = [m for m in getattr(fn, "pytestmark", []) if m.name == "parametrize"]
            if not name.startswith("test") or not marks:
                continue
            for mark in marks:
                flatten(mark.args[1] if len(mark.args) > 1 else ())
            scan_source(fn, namespace, set())
    return objects, methods


HEADER = """\
# Derivative rules

<!-- Generated by scripts/rules_table.py from morula.rules.registry.REGISTRY. Do not edit by
     hand: run `python scripts/rules_table.py` (tests/test_docs.py fails when this file is stale). -->

Every function, method and attribute that morula differentiates with a
registered rule instead of transforming Python source. Anything not listed
here is handled by the runtime dispatch described in [the guide](guide.md#how-a-call-is-differentiated):
Python functions, methods, lambdas and constructors are transformed from their
source; any other call is run and must return no floating-point value, or it
raises `MissingRuleError`. Indexing (`x[i]`, `x[i] = v`), attribute access on
your own objects, iteration (`for row in A`) and tuple/list/dict literals are
part of the engine and are not listed either.

Columns:

- **function**: the name you write. `np` is NumPy, `mo` is morula, a bare name
  (`abs`) is a Python builtin; `ndarray.sum` is the method `x.sum()` of a NumPy
  array, `ndarray.T` the attribute `x.T`, `list.append` a method of Python lists.
  `Generator.normal` is a method of `np.random.Generator`, `csr_matrix.dot` one
  of `scipy.sparse.csr_matrix`. Other names for the same object follow in
  parentheses. SciPy's rules are registered once your program imports SciPy
  (morula never imports it itself).
- **kind**: `rule` has a derivative rule; `nondiff` is declared to have no
  derivative (its output is treated as a constant: comparisons, rounding,
  `argmax`, random sampling, `len`, ...); `refused` raises
  `UnsupportedOperationError` with the replacement to use (in-place operations
  morula cannot track, such as `ndarray.sort`).
- **reverse**: a reverse-mode (vjp) rule exists (for `nondiff`: the zero
  derivative).
- **forward**: how forward mode (`jvp`, `jacfwd`, `hessian`) differentiates it:
  ✓ a forward rule, most of them generated from the same declaration as the
  reverse rule (the elementwise derivative tables, `linear`/`multilinear`
  declarations), the rest written out; `pullback` the exact forward rule
  derived from the reverse rule (one pullback per output element: exact, but
  its cost grows with the output size); `zero` for `nondiff`; `refused` as for
  reverse mode; `—` none (an in-place method forward mode cannot follow yet:
  it raises `UnsupportedOperationError`). Every forward rule is checked
  against its reverse rule by the same sweeps (the inner-product identity
  `<dy, J v> = <J^T dy, v>`).
- **batched**: how `jacobian`'s batched backward sweep (many output cotangents
  at once; guide: "jacobian") runs the pullback: ✓ on the whole batch at once;
  `each` once per cotangent inside the same sweep (still one sweep, slower);
  empty for `nondiff`/`refused`. Every rule check compares the two.
- **tested**: ✓ when a parametrized test in `tests/rules/` (a sweep over shapes,
  axes, dtypes or arguments, checked against finite differences) exercises it:
  the function is among the test's parameters, named in its source or in a
  helper it calls, or (for methods) called as `.name(`. `tests/test_docs.py`
  fails if a rule of the NumPy/SciPy modules has no such sweep. The Python
  builtins, `math` and operator rules are checked through whole programs in
  `tests/programs/`. Conventions at non-differentiable points are in
  [rules_numpy_notes.md](rules_numpy_notes.md).

Rows are sorted by module, then name. To add a rule of your own see
[Extending morula](guide.md#extending-morula-rrule-and-nondiff).

"""


class MissingLibraryError(RuntimeError):
    """A rule module's library is not installed, so the table would be incomplete."""


def render():
    """The text docs/rules.md should have. Needs every optional library morula has rules for
    (install the test extras: ``pip install -e ".[test]"``)."""
    registry, missing = _load_rules()
    if missing:
        raise MissingLibraryError("cannot list all rules; these rule modules do not import: "
                                  + "; ".join(missing))
    aliases = _alias_index()
    rows = _function_rows(registry, aliases)
    rows += _member_rows(registry.methods)
    rows += _member_rows(registry.attributes)
    rows.sort(key=lambda r: (r[0].lower(), r[1].lower(), r[1]))
    swept, swept_methods = _swept()
    n_rule = sum(1 for r in rows if not _is_nondiff(r[3]))
    lines = [HEADER.rstrip("\n"), "",
             f"{len(rows)} entries: {n_rule} rules, {len(rows) - n_rule} nondiff. Forward mode: "
             f"{sum(1 for r in rows if forward_cell(registry, r[3], r[4], _kind(r[3])) == '✓')} forward rules, "
             f"{sum(1 for r in rows if forward_cell(registry, r[3], r[4], _kind(r[3])) == 'pullback')} derived "
             "from the pullback.", "",
             "| function | kind | reverse | forward | batched | tested |",
             "|---|---|---|---|---|---|"]
    for module, name, others, rule, obj in rows:
        cell = f"`{name}`"
        if others:
            cell += " (" + ", ".join(f"`{o}`" for o in others) + ")"
        kind = _kind(rule)
        lines.append(f"| {cell} | {kind} | ✓ | {forward_cell(registry, rule, obj, kind)} | "
                     f"{batched_cell(rule, kind)} | {'✓' if is_swept(obj, swept, swept_methods) else ''} |")
    return "\n".join(lines) + "\n"


def batched_cell(rule, kind):
    """How a batched backward sweep runs the rule's pullback (see the column's description)."""
    from morula.reverse import shadow
    if kind != "rule":
        return ""
    while hasattr(rule, "__wrapped__"):
        rule = rule.__wrapped__
    code = getattr(rule, "__code__", None)
    if code is None:
        return "each"
    codes = list(shadow._pullback_codes(code))
    for name in code.co_names:   # a rule handing over to a helper of its module (sum -> _sum_rule)
        helper = rule.__globals__.get(name)
        if callable(helper) and getattr(helper, "__module__", None) == rule.__module__ \
                and hasattr(helper, "__code__"):
            codes += shadow._pullback_codes(helper.__code__)
    return "✓" if any(c in shadow.BATCH_CAPABLE for c in codes) else "each"


def _kind(rule):
    return "nondiff" if _is_nondiff(rule) else "refused" if _is_refusal(rule) else "rule"


def forward_cell(registry, rule, obj, kind):
    """How forward mode handles a registry entry (see the column's description)."""
    from morula.forward.derived import DECLARATIONS, FRULES
    if kind == "nondiff":
        return "zero"
    if kind == "refused":
        return "refused"
    forward = getattr(rule, "__frule__", None)
    if forward is None and not isinstance(obj, tuple):
        forward = FRULES.get(obj)
        for declared in DECLARATIONS:
            forward = forward or declared(obj, rule)
    if forward is not None and not getattr(forward, "derived", False):
        return "✓"
    if isinstance(obj, tuple) and obj in registry.mutating_methods:
        return "—"
    return "pullback"


def _is_refusal(rule):
    """Rules that exist to refuse an operation morula cannot track (``ndarray.sort`` in place)."""
    return getattr(rule, "__name__", "") == "refusing_method"


def is_swept(obj, swept, swept_methods):
    """Is a registry entry (a callable, or ``(class, name)`` for a method/attribute) swept?"""
    if isinstance(obj, tuple):
        cls, name = obj
        return (obj in swept or (cls.__name__, name) in swept or getattr(cls, name, None) in swept
                or name in swept_methods)
    return obj in swept


def unswept_rules():
    """Rules (not nondiff declarations) of morula's NumPy/SciPy modules that no parametrized
    test sweeps: ``tests/test_docs.py`` requires this to be empty."""
    registry, _ = _load_rules()
    swept, swept_methods = _swept()
    aliases = _alias_index()
    rows = _function_rows(registry, aliases) + _member_rows(registry.methods) + _member_rows(registry.attributes)
    return sorted(name for module, name, others, rule, obj in rows
                  if not _is_nondiff(rule) and not _is_refusal(rule)
                  and (rule.__module__ or "").startswith(("morula.rules.numpy",
                                                                                    "morula.rules.scipy"))
                  and not is_swept(obj, swept, swept_methods))


def check(path=DOC):
    """True when ``path`` holds exactly what ``render()`` gives."""
    try:
        current = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        current = ""
    return current == render()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if docs/rules.md differs from what would be generated")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
        if current == text:
            print(f"{DOC.relative_to(ROOT)} is up to date")
            return 0
        diff = difflib.unified_diff(current.splitlines(), text.splitlines(), "docs/rules.md (current)",
                                    "docs/rules.md (generated)", lineterm="", n=1)
        print("\n".join(list(diff)[:60]))
        print(f"\n{DOC.relative_to(ROOT)} is stale: run `python scripts/rules_table.py`", file=sys.stderr)
        return 1
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
