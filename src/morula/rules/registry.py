"""The rule registry: what morula knows about functions it does not transform.

In: declarations from rule modules (``rrule``, ``method_rule``, ``attr_rule``,
``nondiff``). Out: lookups used by the runtime dispatch, and a version counter
that changes whenever a rule is added or replaced (generated code is cached
per version).

Conventions (see docs/architecture.md):
- a function rule ``rule(*args, **kwargs)`` returns ``(out, pullback)`` and
  ``pullback(dout)`` returns one cotangent per *positional* argument
  (``None`` means zero); keyword-only parameters of the rule are static, other
  parameters passed by keyword are bound to their positions first;
- a method rule ``rule(self, *args, **kwargs)`` is the same with ``self`` first;
  a *mutating* method rule's pullback is ``pullback(dout, dself_after)`` and
  returns ``(dself_before, *dargs)``;
- an attribute rule ``rule(obj)`` returns ``(value, pullback)`` with
  ``pullback(dvalue) -> (dobj,)``;
- ``pullback`` may be ``None``: the output is a constant.
"""

import inspect


class Registry:
    def __init__(self):
        self.version = 0
        self.functions = {}          # callable -> rule
        self.methods = {}            # (type, name) -> rule
        self.mutating_methods = set()  # (type, name)
        self.attributes = {}         # (type, name) -> rule
        self._method_cache = {}      # (concrete type, name) -> rule or None
        self._attr_cache = {}
        self._signatures = {}        # rule -> positional parameter info
        # methods/attributes of other array libraries fall back to this type's rules (np.ndarray)
        self.array_method_fallback = None
        # scalar types of that library (np.generic) whose methods mirror the array's (x.sum(), x.T)
        self.array_scalar_types = ()

    def _changed(self):
        self.version += 1
        self._method_cache.clear()
        self._attr_cache.clear()

    # -- declaration -------------------------------------------------------
    def add_function(self, fn, rule):
        try:
            self.functions[fn] = rule
        except TypeError:
            raise TypeError(f"cannot register a rule for unhashable {fn!r}") from None
        self._changed()

    def add_method(self, cls, name, rule, mutating=False):
        self.methods[(cls, name)] = rule
        if mutating:
            self.mutating_methods.add((cls, name))
        else:
            self.mutating_methods.discard((cls, name))
        self._changed()

    def add_attribute(self, cls, name, rule):
        self.attributes[(cls, name)] = rule
        self._changed()

    # -- lookup -------------------------------------------------------------
    def function_rule(self, fn):
        try:
            return self.functions.get(fn)
        except TypeError:  # unhashable callable
            return None

    def method_rule(self, cls, name):
        """The rule for ``cls.name`` found along the MRO, and whether it mutates ``self``."""
        key = (cls, name)
        try:
            return self._method_cache[key]
        except KeyError:
            pass
        found = None
        for base in cls.__mro__:
            rule = self.methods.get((base, name))
            if rule is not None:
                found = (rule, (base, name) in self.mutating_methods)
                break
            if name in base.__dict__:
                break  # overridden by a class without a rule: not ours
        self._method_cache[key] = found
        return found

    def attribute_rule(self, cls, name):
        key = (cls, name)
        try:
            return self._attr_cache[key]
        except KeyError:
            pass
        found = None
        for base in cls.__mro__:
            rule = self.attributes.get((base, name))
            if rule is not None:
                found = rule
                break
        if found is None and self.array_method_fallback is not None and cls is not self.array_method_fallback \
                and (hasattr(cls, "__array_function__") or issubclass(cls, self.array_scalar_types)):
            found = self.attributes.get((self.array_method_fallback, name))
        self._attr_cache[key] = found
        return found

    def bind_keywords(self, rule, args, kwargs):
        """Move keyword arguments that name positional parameters of ``rule`` into position.

        Returns ``(args, static_kwargs, positions)`` where ``positions`` maps each
        moved keyword's name to its index in the new ``args``.
        """
        info = self._signatures.get(rule)
        if info is None:
            info = _positional_parameters(rule)
            self._signatures[rule] = info
        names, defaults = info
        moved = {k: v for k, v in kwargs.items() if k in names}
        if not moved:
            return args, kwargs, {}
        static = {k: v for k, v in kwargs.items() if k not in moved}
        last = max(names.index(k) for k in moved)
        new_args = list(args)
        positions = {}
        for index in range(len(args), last + 1):
            name = names[index]
            if name in moved:
                new_args.append(moved[name])
                positions[name] = index
            elif name in defaults:
                new_args.append(defaults[name])
            else:
                raise TypeError(f"missing argument {name!r}")
        return tuple(new_args), static, positions


def _positional_parameters(rule):
    try:
        signature = inspect.signature(rule)
    except (TypeError, ValueError):
        return [], {}
    names, defaults = [], {}
    for p in signature.parameters.values():
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
            if p.default is not p.empty:
                defaults[p.name] = p.default
    return names, defaults


REGISTRY = Registry()


def rrule(fn):
    """Register a reverse rule for ``fn``: ``@rrule(fn) def rule(*args): return out, pullback``.

    Registering again for the same ``fn`` replaces the old rule.
    """

    def register(rule):
        REGISTRY.add_function(fn, rule)
        return rule

    return register


def method_rule(cls, name, mutating=False):
    """Register a rule for the method ``cls.name`` (``rule(self, *args)``)."""

    def register(rule):
        REGISTRY.add_method(cls, name, rule, mutating)
        return rule

    return register


def attr_rule(cls, name):
    """Register a rule for reading the attribute/property ``obj.name`` of ``cls`` instances."""

    def register(rule):
        REGISTRY.add_attribute(cls, name, rule)
        return rule

    return register


def _constant_rule_for(fn):
    def constant_rule(*args, **kwargs):
        return fn(*args, **kwargs), None

    constant_rule.__name__ = f"nondiff_{getattr(fn, '__name__', 'fn')}"
    constant_rule.__morula_constant__ = True   # run as written, even under an outer transform
    return constant_rule


def nondiff(*fns):
    """Declare that ``fns`` have no derivative: their outputs are constants."""
    for fn in fns:
        REGISTRY.add_function(fn, _constant_rule_for(fn))
    return fns[0] if len(fns) == 1 else fns


def nondiff_method(cls, *names):
    """Declare methods of ``cls`` that have no derivative."""
    for name in names:
        def constant_method(self, *args, _name=name, **kwargs):
            return getattr(self, _name)(*args, **kwargs), None
        constant_method.__morula_constant__ = True
        REGISTRY.add_method(cls, name, constant_method)


def substitute(fn):
    """Differentiate calls to ``fn`` through a plain Python re-implementation of it.

    ``@substitute(np.cov) def cov(m, ...): ...`` -- for library functions whose own source
    morula cannot transform (``try`` blocks, C helpers) but which are easy to write with
    functions that have rules. The re-implementation must compute the same values.
    """

    def register(impl):
        def substitute_rule(*args, **kwargs):
            from ..reverse import runtime
            out, pb = runtime._call_python(impl, args, kwargs or None)
            if pb is None:
                return out, None
            n = len(args)
            names = tuple(kwargs)

            def substitute_pullback(g):
                cts = pb(g)
                positional = tuple(cts[1:1 + n])
                return positional + ((dict(zip(names, cts[1 + n:])),) if names else ())
            substitute_pullback.__name__ = f"{getattr(fn, '__name__', 'fn')}_substitute_pullback"
            from ..reverse.shadow import keep_must_run
            return out, keep_must_run(pb, substitute_pullback, out)

        def substitute_frule(T, args, targs, kwargs, tkwargs):
            from ..forward import runtime as forward_runtime
            return forward_runtime.dispatch(T, impl, args, targs, kwargs or None, tkwargs or None)
        substitute_frule.keyword_tangents = True   # forward mode runs the same re-implementation

        substitute_rule.keyword_cotangents = True
        substitute_rule.__frule__ = substitute_frule
        substitute_rule.__name__ = f"{getattr(fn, '__name__', 'fn')}_substitute"
        REGISTRY.add_function(fn, substitute_rule)
        return impl

    return register
