"""Shadow memory: the cotangents of mutable objects, kept by identity during a backward sweep.

In: cotangents deposited by pullbacks for arrays, lists, dicts and instances of Python
classes; array types registered by rules (``register_array_type``). Out: one cotangent
per object that all its aliases share (per-array buffers whose views are views of the
root's buffer; per-list lists, per-dict dicts, per-object field dicts), and pullback
wrappers that route cotangents of mutable values through them.

Why: an array can be read under several names, through views, and written in place
(``u[1:-1] += ...``, ``out[i] = v``, a function filling its argument). The reverse of a
write ``x[i] = v`` must see the cotangent of *every* later read of that memory, whatever
name or view it was read through, take ``shadow(x)[i]`` as ``v``'s cotangent and zero it.
So array cotangents live in one buffer per base array ("root"); the shadow of a view is
the same view of its root's buffer. Local cotangents (in generated code) and the shadow
are both valid carriers: the operation that *created* an array adds the two.

The engine knows nothing about NumPy: an array library registers how to find a root,
how to view a buffer like a given view, and how to allocate a zero buffer.
"""

import functools
import sys
import threading
import types

from .. import tangents
from ..tangents import BATCH, CannotBatch

_state = threading.local()
_FunctionType = types.FunctionType
_partial = functools.partial
ARRAY_TYPES = set()
_hooks = {}   # type -> ArrayHooks


class ArrayHooks:
    """How one array type relates views, roots and shadow buffers."""

    def __init__(self, root_of, view_into, zeros_for, writeable_view_of, batch=None):
        self.root_of = root_of                      # x -> the array owning x's memory
        self.view_into = view_into                  # (buffer, root, x) -> buffer viewed like x
        self.zeros_for = zeros_for                  # root -> zero buffer, or None (no gradient)
        self.writeable_view_of = writeable_view_of  # (x, root) -> x is a plain view of root
        self.batch = batch                          # BatchHooks, or None: no batched sweeps


class BatchHooks:
    """What a batched backward sweep needs from an array type: buffers with a leading batch axis
    (each entry laid out like the unbatched buffer), views of them, and stacking."""

    def __init__(self, zeros_for, view_into, stack):
        self.zeros_for = zeros_for    # (root, n) -> zero buffer of shape (n,) + root.shape, or None
        self.view_into = view_into    # (buffer, root, x) -> batched buffer viewed like x
        self.stack = stack            # list of equally shaped values -> one batched value


def register_array_type(cls, root_of, view_into, zeros_for, writeable_view_of, batch=None):
    ARRAY_TYPES.add(cls)
    _hooks[cls] = ArrayHooks(root_of, view_into, zeros_for, writeable_view_of, batch)


def is_own_root(x):
    """Does array ``x`` own its memory (it is no view of another array)?"""
    return _hooks[type(x)].root_of(x) is x


def same_memory(a, b):
    """Do arrays ``a`` and ``b`` live in the same memory (the same root)?"""
    return _hooks[type(a)].root_of(a) is _hooks[type(b)].root_of(b)


class Store:
    __slots__ = ("buffers", "views", "items", "batch")

    def __init__(self):
        self.batch = BATCH.size   # buffers of a batched sweep carry a leading batch axis
        self.buffers = {}   # id(root) -> (root, buffer, owned); a borrowed buffer is copied on write
        self.views = {}     # id(x) -> (x, buffer, view of buffer like x): views are reused
        self.items = {}     # id(container) -> (container, list/dict of item cotangents)


def begin():
    stack = getattr(_state, "stack", None)
    if stack is None:
        stack = _state.stack = []
    store = Store()
    stack.append(store)
    _state.store = store
    return store


def end():
    stack = _state.stack
    stack.pop()
    _state.store = stack[-1] if stack else None


def _store():
    store = getattr(_state, "store", None)
    if store is None:   # a pullback called outside the API: give it a private store
        store = begin()
    return store


def view(x, create=True):
    """The shadow of array ``x`` (a view of its root's buffer, writable), or None."""
    hooks = _hooks[type(x)]
    root = hooks.root_of(x)
    buffers = _store().buffers
    entry = buffers.get(id(root))
    if entry is None:
        if not create:
            return None
        n = _state.store.batch
        buffer = hooks.zeros_for(root) if n is None else _batch_hooks(hooks).zeros_for(root, n)
        if buffer is None:
            return None
        buffers[id(root)] = (root, buffer, True)
    else:
        buffer = entry[1]
        if not entry[2]:   # borrowed from a pullback: copy before writing into it (same layout)
            buffer = buffer.copy(order="K")
            buffers[id(root)] = (root, buffer, True)
    if x is root:
        return buffer
    return _cached_view(buffer, root, x, hooks)


def _cached_view(buffer, root, x, hooks):
    views = _state.store.views
    cached = views.get(id(x))
    if cached is not None and cached[0] is x and cached[1] is buffer:
        return cached[2]
    v = _view_into(hooks, buffer, root, x)
    views[id(x)] = (x, buffer, v)
    return v


def _view_into(hooks, buffer, root, x):
    if _state.store.batch is None:
        return hooks.view_into(buffer, root, x)
    return _batch_hooks(hooks).view_into(buffer, root, x)


def _batch_hooks(hooks):
    if hooks.batch is None:
        raise CannotBatch("an array type without batch hooks")
    return hooks.batch


def deposit(x, ct):
    """Add cotangent ``ct`` of ``x`` (an array or a tracked container) into its shadow."""
    if ct is None:
        return
    if type(x) not in ARRAY_TYPES:
        _whole_deposit(x, ct)
        return
    hooks = _hooks[type(x)]
    root = hooks.root_of(x)
    buffers = _store().buffers
    key = id(root)
    entry = buffers.get(key)
    if x is root and type(ct) is type(root) and ct.dtype == root.dtype and _same_layout(ct, root):
        if entry is None:   # the common case: keep the pullback's array itself (copy on write)
            buffers[key] = (root, ct, False)
            return
        if not entry[2]:
            total = entry[1].copy(order="K")
            total += ct
            buffers[key] = (root, total, True)
            return
    elif type(ct) is not type(root) and type(ct) in ARRAY_TYPES:
        # a cotangent of another array type (dual arrays carrying tangents, for a Hessian)
        if x is root and ct.shape == root.shape:   # kept as it is, summed with what is there
            buffers[key] = (root, ct if entry is None else ct + entry[1], False)
            return
        promote = PROMOTE.get(type(ct))
        if promote is not None and (entry is None or type(entry[1]) is not type(ct)):
            # the root's buffer becomes one of ct's type (views of it: the root type's view_into)
            buffers[key] = (root, promote(root, None if entry is None else entry[1], ct), True)
            _state.store.views.clear()
    s = view(x)
    if s is not None:
        s += ct


# cotangent type -> promote(root, its current buffer or None, ct): a buffer of the cotangent's
# type laid out like ``root``, holding what the current one held (registered by rules)
PROMOTE = {}


def _same_layout(ct, root):
    """Can ``ct`` itself serve as ``root``'s shadow buffer (views index it with the root's layout;
    in a batched sweep, entry after entry, each laid out like a C-contiguous root)?"""
    if _state.store.batch is None:
        return ct.shape == root.shape and ct.strides == root.strides
    return ct.shape == (_state.store.batch,) + root.shape and ct.flags.c_contiguous \
        and root.flags.c_contiguous


def take(x):
    """Remove and return the shadow of ``x`` (a fresh array: nothing refers to it before it
    existed). The result must not be written into."""
    if type(x) not in ARRAY_TYPES:
        return _whole_take(x)
    hooks = _hooks[type(x)]
    root = hooks.root_of(x)
    buffers = _store().buffers
    entry = buffers.get(id(root))
    if entry is None:
        return None
    if x is root:
        del buffers[id(root)]
        return entry[1]
    s = view(x)
    out = s.copy()
    s[...] = 0
    return out


def total(x, local):
    """The whole cotangent of ``x`` at the end: local part plus its shadow, if it has one."""
    if type(x) not in ARRAY_TYPES:
        if kind(x) is None:
            return local
        return tangents.add(local, _whole_peek(x))
    hooks = _hooks[type(x)]
    root = hooks.root_of(x)
    buffers = _store().buffers
    entry = buffers.get(id(root))
    if entry is None:
        return local
    if x is root and local is None and _exclusive(entry[1]):
        # nothing else refers to the buffer or shares its memory: hand it over, not a copy
        # (the store keeps no claim on it; a second total() of the same array copies)
        buffers[id(root)] = (root, entry[1], False)
        return entry[1]
    s = entry[1] if x is root else _view_into(hooks, entry[1], root, x)
    return tangents.add(local, s.copy())


def _exclusive(buffer):
    """Does nothing but the store's entry refer to ``buffer`` (and does it own its memory)?"""
    return getattr(buffer, "base", 0) is None and sys.getrefcount(buffer) <= _LONE_REFS


def _lone_refs():
    # what getrefcount reports, called as in _exclusive, for an object only a store-like entry
    # holds (the count of the call's own references differs between Python versions)
    entry = {0: (None, object(), False)}[0]

    def count(buffer):
        return sys.getrefcount(buffer)
    return count(entry[1])


_LONE_REFS = _lone_refs()


# --------------------------------------------------------------------------- lists, dicts, objects
# A container's shadow is a Python list (positions), dict (keys) or dict (attribute names) of
# cotangents. List positions are recorded by the forward pass, so the shadow follows the list's
# length backwards through appends and pops regardless of the list's final state.

LIST, DICT, OBJECT = "list", "dict", "object"
_HEAPTYPE = 1 << 9
_kinds = {list: LIST, dict: DICT}
_NOT_TRACKED = (tuple, type, frozenset)


def kind(x):
    """'array', 'list', 'dict', 'object' (instance of a Python class) or None (immutable/other)."""
    t = type(x)
    try:
        return _kinds[t]
    except KeyError:
        pass
    if t in ARRAY_TYPES:
        k = "array"
    elif issubclass(t, list):
        k = LIST
    elif issubclass(t, dict):
        k = DICT
    elif t.__flags__ & _HEAPTYPE and not issubclass(t, _NOT_TRACKED) and hasattr(x, "__dict__") \
            and not callable(getattr(t, "__get__", None)):
        k = OBJECT
    else:
        k = None
    _kinds[t] = k
    return k


def _storage_key(x):
    """An object's fields live in its ``__dict__``: both share one cotangent (``o.w`` and
    ``vars(o)["w"]`` are the same entry)."""
    if kind(x) is OBJECT:
        fields = getattr(x, "__dict__", None)
        if type(fields) is dict:
            return fields
    return x


def _container(x, create=True):
    items = _store().items
    x = _storage_key(x)
    entry = items.get(id(x))
    if entry is None:
        if not create:
            return None
        ct = [] if kind(x) is LIST else {}
        items[id(x)] = (x, ct)
        return ct
    return entry[1]


def item_deposit(x, key, g):
    """Add ``g`` to the cotangent of ``x[key]`` (``x.key`` for objects)."""
    if g is None:
        return
    ct = _container(x)
    if type(ct) is list:
        if len(ct) <= key:
            ct.extend([None] * (key + 1 - len(ct)))
        ct[key] = g if ct[key] is None else tangents.add(ct[key], g)
    else:
        old = ct.get(key)
        ct[key] = g if old is None else tangents.add(old, g)


def item_take(x, key):
    """Remove and return the cotangent of ``x[key]`` (the entry is being overwritten)."""
    ct = _container(x, create=False)
    if ct is None:
        return None
    if type(ct) is list:
        if key < len(ct):
            g, ct[key] = ct[key], None
            return g
        return None
    return ct.pop(key, None)


def list_truncate(x, n):
    """Shorten a list's shadow to ``n`` entries (reversing appends); returns the removed cotangents."""
    ct = _container(x, create=False)
    if ct is None or len(ct) <= n:
        return []
    tail = ct[n:]
    del ct[n:]
    return tail


def list_insert(x, position, g):
    ct = _container(x)
    if len(ct) < position:
        ct.extend([None] * (position - len(ct)))
    ct.insert(position, g)


def list_delete(x, position):
    ct = _container(x, create=False)
    if ct is None or position >= len(ct):
        return None
    return ct.pop(position)


def list_permute(x, order, n):
    """Reverse a reordering: position ``k`` of the new order held old position ``order[k]``."""
    ct = _container(x, create=False)
    if ct is None:
        return
    ct.extend([None] * (n - len(ct)))
    old = [None] * n
    for k, i in enumerate(order):
        old[i] = ct[k]
    ct[:] = old


def _as_local(x, ct):
    if ct is None:
        return None
    k = kind(x)
    if k is OBJECT:
        return tangents.ObjectCotangent({n: v for n, v in ct.items() if v is not None}) or None
    if k is LIST:
        return list(ct) + [None] * (len(x) - len(ct)) if len(ct) < len(x) else list(ct)
    return dict(ct)


def _whole_deposit(x, g):
    k = kind(x)
    if k is LIST:
        if type(g) not in (list, tuple):
            return g
        for i, c in enumerate(g):
            if c is not None:
                item_deposit(x, i, c)
        return None
    fields = g.fields if isinstance(g, tangents.ObjectCotangent) else g if type(g) is dict else None
    if fields is None:
        return g
    for key, c in fields.items():
        if c is not None:
            item_deposit(x, key, c)
    return None


def _whole_take(x):
    entry = _store().items.pop(id(_storage_key(x)), None)
    return None if entry is None else _as_local(x, entry[1])


def _whole_peek(x):
    entry = _store().items.get(id(_storage_key(x)))
    return None if entry is None else _as_local(x, entry[1])


# --------------------------------------------------------------------------- activity
# ``grad(f, argnums=0)(params, x)`` never returns the cotangent of ``x``: rules may skip computing
# it (the input batch's cotangent of the first layer's matmul is as costly as that matmul). An
# array qualifies while the forward pass runs only if it is a non-differentiated argument that
# owns its memory, shares none with a differentiated argument, and has not been written into:
# a write (``x[0] = p``) makes later reads' cotangents reach ``p`` (``activate``).

_NO_INACTIVE = frozenset()


def is_inactive(x):
    """May the cotangent of array ``x`` be skipped (see above)? Views of such an array too (a
    write through one activates the array it views)."""
    inactive = getattr(_state, "inactive", _NO_INACTIVE)
    if not inactive:
        return False
    if id(x) in inactive:
        return True
    t = type(x)
    return t in ARRAY_TYPES and id(_hooks[t].root_of(x)) in inactive


# The float and complex literals of generated code (``np.maximum(h, 0.0)``, ``x ** 2.0``): a value
# that *is* one of these objects came from the literal, so no input reaches it and rules need not
# compute its cotangent (a full-size product and sum against an array operand). Generated code is
# compiled by morula, so its constants are objects of its own (Python shares no float objects
# between compilations); they are kept alive here, so their ids are never reused.
_LITERAL_IDS = set()
_LITERALS_KEPT = []


def register_literals(code):
    """Record the float/complex constants of ``code`` and of the code objects nested in it."""
    stack = [code]
    while stack:
        c = stack.pop()
        for k in c.co_consts:
            t = type(k)
            if t is float or t is complex:
                if id(k) not in _LITERAL_IDS:
                    _LITERALS_KEPT.append(k)
                    _LITERAL_IDS.add(id(k))
            elif t is types.CodeType:
                stack.append(k)


def is_literal(x):
    """Is ``x`` (a number) a literal of generated code, in a sweep no other sweep encloses?

    Inside an enclosing sweep (``mo.grad`` called by code the outer sweep runs as it is, or by a
    pullback) a literal of the outer code may be the very value the inner call differentiates
    with respect to; there nothing counts as a literal."""
    return id(x) in _LITERAL_IDS and getattr(_state, "depth", 0) == 1


class sweep:
    """Counts the forward and backward sweeps running in this thread (see ``is_literal``)."""

    def __enter__(self):
        _state.depth = getattr(_state, "depth", 0) + 1
        return self

    def __exit__(self, *exc):
        _state.depth -= 1
        return False


# Counts in-place writes of the forward pass (any object, any thread). A call during which it
# moved must have its pullback run even without a cotangent: the write's undo and its shadow
# bookkeeping are in there, however deep in the callee they happened (``map(put, ...)`` where
# ``put`` writes into an array it closes over). Other threads can only make it move more often.
EFFECTS = [0]
# Counts the writes into arrays among them: their pullbacks restore and zero array entries, which
# only unbatched sweeps do (see ``batched_jacobian``). Lists, dicts and objects written in place
# keep cotangents per item, whatever the cotangents are.
ARRAY_WRITES = [0]


def activate(x):
    """``x`` is about to be written into: it and every array it views need cotangents again."""
    EFFECTS[0] += 1
    if type(x) in ARRAY_TYPES:
        ARRAY_WRITES[0] += 1
    inactive = getattr(_state, "inactive", None)
    if inactive:
        while x is not None:
            inactive.discard(id(x))
            x = getattr(x, "base", None)


class inactive_scope:
    """The forward pass of ``f(*args)`` where only ``args[i]`` for ``i`` in ``differentiated``
    need cotangents."""

    def __init__(self, args, differentiated, kwargs=None, function=None):
        self.args, self.differentiated, self.kwargs = args, differentiated, kwargs
        self.function = function   # its closure's and its named globals' arrays: constants too

    def __enter__(self):
        self.saved = getattr(_state, "inactive", _NO_INACTIVE)
        candidates, needed = [], set()
        complete = True
        for i, a in enumerate(self.args):
            if i in self.differentiated:
                complete &= _reachable_memory(a, needed, 0)
            else:
                _own_arrays(a, candidates, 0)
        for v in (self.kwargs or {}).values():
            _own_arrays(v, candidates, 0)
        if type(self.function) is _FunctionType:
            _own_arrays(self.function, candidates, 0)
        _state.inactive = {id(c) for c in candidates if id(c) not in needed} if complete else set()
        return self

    def __exit__(self, *exc):
        _state.inactive = self.saved
        return False


def _own_arrays(value, found, depth):
    """Arrays in ``value`` (through lists, tuples, dicts, and the cells and named globals of
    functions and partials passed as arguments: a function's constant matrix) that own their
    memory."""
    t = type(value)
    if t in ARRAY_TYPES:
        if getattr(value, "base", None) is None:
            found.append(value)
    elif depth < 4 and (t is list or t is tuple or t is dict):
        for v in (value.values() if t is dict else value):
            _own_arrays(v, found, depth + 1)
    elif depth < 4 and t is _FunctionType:
        for cell in value.__closure__ or ():
            try:
                contents = cell.cell_contents
            except ValueError:   # an empty cell
                continue
            _own_arrays(contents, found, depth + 1)
        globals_ = value.__globals__
        for name in value.__code__.co_names:   # the module-level arrays it reads by name
            v = globals_.get(name)
            if type(v) in ARRAY_TYPES and getattr(v, "base", None) is None:
                found.append(v)
    elif depth < 4 and t is _partial:
        _own_arrays(value.func, found, depth + 1)
        _own_arrays(value.args, found, depth + 1)
        _own_arrays(value.keywords, found, depth + 1)


def _reachable_memory(value, ids, depth):
    """Add the ids of every array reachable from ``value`` and of the arrays they view; False when
    the search had to stop (then nothing may be skipped)."""
    t = type(value)
    if t is float or t is int or t is bool or t is complex or t is str or value is None:
        return True
    if depth > 6:
        return False
    if t in ARRAY_TYPES or hasattr(value, "base") and hasattr(value, "shape"):
        x = value
        while x is not None:
            ids.add(id(x))
            x = getattr(x, "base", None)
        return True
    if isinstance(value, (list, tuple)):
        return all(_reachable_memory(v, ids, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(_reachable_memory(v, ids, depth + 1) for v in value.values())
    if callable(value):   # a closure's cells may hold anything
        return False
    fields = getattr(value, "__dict__", None)
    if type(fields) is dict and not hasattr(value, "__slots__"):
        return all(_reachable_memory(v, ids, depth + 1) for v in fields.values())
    return False


# --------------------------------------------------------------------------- classification

def involves_arrays(value):
    """Does ``value`` hold a mutable tracked value (array, list, dict, object), at the top level or
    one tuple level down?"""
    t = type(value)
    if t is float or t is int or t is bool or t is str or value is None:
        return False
    if t is tuple or isinstance(value, tuple):   # NamedTuples too (np.linalg results)
        for v in value:
            tv = type(v)
            if tv is not float and (tv in ARRAY_TYPES or kind(v) is not None):
                return True
        return False
    return kind(value) is not None


def _roots_of(args):
    roots = set()
    for a in args:
        t = type(a)
        if t in ARRAY_TYPES:
            roots.add(id(_hooks[t].root_of(a)))
        elif t is tuple or t is list:
            for v in a:
                if type(v) in ARRAY_TYPES:
                    roots.add(id(_hooks[type(v)].root_of(v)))
    return roots


def _deposit_structure(arg, ct, contents=None):
    """Deposit the cotangent ``ct`` of ``arg`` where ``arg`` is mutable (shadow); return what
    remains for the local (immutable) part. ``contents``: what list/dict ``arg`` held when it was
    read (it may have changed since)."""
    if ct is None:
        return None
    t = type(arg)
    if t in ARRAY_TYPES:
        deposit(arg, ct)
        return None
    if t is tuple and type(ct) in (tuple, list):
        rest = [_deposit_structure(a, c) for a, c in zip(arg, ct)]
        if all(r is None for r in rest):
            return None
        return tuple(rest)
    k = kind(arg)
    if k is LIST and type(ct) in (list, tuple):
        deposit_items(arg, enumerate(ct), arg if contents is None else contents)
        return None
    if k is DICT and type(ct) is dict:
        deposit_items(arg, ct.items(), arg if contents is None else contents)
        return None
    if k is not None:
        return _whole_deposit(arg, ct)
    return ct


def deposit_items(container, cts, contents):
    """A list's or dict's item cotangents: a mutable item's goes to the item itself (the container
    only refers to it, and it may be written in place after it was put there), the others to the
    container's slot."""
    is_list = type(contents) is not dict
    for key, c in cts:
        if c is None:
            continue
        present = key < len(contents) if is_list else key in contents
        if present:
            item = contents[key]
            ti = type(item)
            if ti is not float and (ti in ARRAY_TYPES or kind(item) is not None
                                    or ti is tuple and involves_arrays(item)):
                rest = _deposit_structure(item, c)
                if rest is not None:
                    item_deposit(container, key, rest)
                continue
        item_deposit(container, key, c)


def deposit_all(args, cts, offset=0, contents=None):
    """Deposit the array cotangents among ``cts`` (aligned with ``args`` from ``offset``)."""
    out = list(cts)
    for i, a in enumerate(args):
        j = i + offset
        if j < len(out) and out[j] is not None:
            out[j] = _deposit_structure(a, out[j], contents[i] if contents is not None else None)
    return tuple(out)


def _contents_of(args):
    """Shallow copies of the list and dict arguments (None when there are none)."""
    found = None
    for i, a in enumerate(args):
        t = type(a)
        if t is list or t is dict:
            if found is None:
                found = [None] * len(args)
            found[i] = list(a) if t is list else dict(a)
    return found


# --------------------------------------------------------------------------- pullback wrappers

class ShadowPullback:
    """A pullback whose inputs or output are arrays: always run by generated code (the array
    cotangents may be in the shadow only), collecting the output's shadow and depositing the
    inputs' cotangents."""

    __slots__ = ("pb", "args", "out", "kind", "n", "contents", "plan", "owning")

    def __init__(self, pb, args, out, kind, n):
        self.pb = pb
        self.args = args
        self.out = out
        # "rule": take the output's shadow; "call": run the callee's back; "effects": a rule that
        # ran user code with side effects (map, reduce): as "rule", but run even without cotangent
        self.kind = kind
        self.n = n
        self.contents = _contents_of(args)
        self.plan = output_plan(out, args) if kind != "call" else None
        # the common case, a rule returning an array that owns its memory: its whole cotangent is
        # g plus its own shadow entry (what _collect_output finds, without the general walk)
        t = type(out)
        self.owning = kind == "rule" and t in ARRAY_TYPES and _hooks[t].root_of(out) is out

    def __call__(self, g, *seed):
        if self.owning:
            entry = _store().buffers.pop(id(self.out), None)
            if entry is not None:
                g = entry[1] if g is None else tangents.add(g, entry[1])
            if g is None:
                return (None,) * self.n
            pb = self.pb
            if BATCH.size is not None and not takes_batch(pb):
                return deposit_all(self.args, _one_by_one(pb, g, BATCH.size), contents=self.contents)
            return deposit_all(self.args, pb(g), contents=self.contents)
        if self.kind != "call":
            g, needed = _collect_output(self.out, self.args, g, self.plan)
            if (not needed or g is None) and self.kind == "rule":
                return (None,) * self.n
            pb = self.pb
            if BATCH.size is not None and not takes_batch(pb):
                return deposit_all(self.args, _one_by_one(pb, g, BATCH.size), contents=self.contents)
            return deposit_all(self.args, pb(g), contents=self.contents)
        cts = self.pb(g, *seed)
        return deposit_all(self.args, cts, offset=len(cts) - len(self.args), contents=self.contents)


def _collect_output(out, args, g, plan=None):
    """The whole cotangent of a rule's output ``out``: ``g`` plus what sits in the shadow of its
    fresh mutable parts, nested ones included (``plan``: see ``output_plan``). Parts that are (views
    of) the arguments keep theirs. Returns ``(cotangent, needed)``; ``needed`` is False when
    nothing in ``out`` is fresh."""
    t = type(out)
    if t is float:
        return g, True
    if t in ARRAY_TYPES:   # the common case: no plan, the arguments' roots only for a view
        fresh = [False]
        ct = _collect_leaf(out, g, None, args, fresh)
        return ct, fresh[0]
    if plan is None:
        plan = output_plan(out, args)
    if plan is out and not (type(out) in ARRAY_TYPES or kind(out) is not None):
        return g, True
    fresh = [False]
    ct = _collect_part(plan, g, _roots_of(args), args, fresh)
    return ct, fresh[0]


def output_plan(out, args):
    """Taken when a rule returns: the parts of ``out`` whose cotangents may sit in the shadow, as
    they are now (a returned list may be appended to or overwritten later). A value for a leaf,
    ``_Part(container, length, [(key, plan), ...])`` for a list, dict or tuple."""
    t = type(out)
    if t is float or t in ARRAY_TYPES or out is None:
        return out
    k = kind(out)
    if k is LIST or k is DICT or isinstance(out, tuple):
        arg_ids = {id(a) for a in args}
        return _plan(out, arg_ids, 0)
    return out


class _Part:
    __slots__ = ("value", "n", "parts")

    def __init__(self, value, n, parts):
        self.value, self.n, self.parts = value, n, parts


def _plan(value, arg_ids, depth):
    k = kind(value)
    if depth > 8 or not (k is LIST or k is DICT or isinstance(value, tuple)):
        return value
    pairs = value.items() if k is DICT else enumerate(value)
    return _Part(value, len(value), [(key, _plan(v, arg_ids, depth + 1)) for key, v in pairs
                                     if id(v) not in arg_ids and _may_hold_shadow(v)])


def _collect_part(plan, g, roots, args, fresh):
    if type(plan) is not _Part:
        return _collect_leaf(plan, g, roots, args, fresh)
    value, n, parts = plan.value, plan.n, plan.parts
    if isinstance(value, tuple):
        if not parts:   # numbers only: the cotangent as given (a NamedTuple's may name fields)
            fresh[0] = True
            return g
        items = tangents._items(g, n, fields=getattr(value, "_fields", None))
        if len(parts) < n:
            fresh[0] = True   # immutable items (numbers) are the rule's own
    else:
        if _is_among(value, args):   # an existing list or dict (an argument or one of its items)
            _whole_deposit(value, g)
            return None
        fresh[0] = True
        whole = tangents.add(g, _whole_take(value))
        if not parts:
            return whole
        if type(value) is not dict and kind(value) is LIST:
            items = tangents._items(whole, n)
        else:
            items = dict(whole) if type(whole) is dict else {}
    for key, sub in parts:
        items[key] = _collect_part(sub, items[key] if type(items) is list else items.get(key),
                                   roots, args, fresh)
    if isinstance(value, tuple):
        if all(c is None for c in items):
            return None
        return type(value)(items) if type(value) is tuple else tuple(items)
    return items


def _collect_leaf(value, g, roots, args, fresh):
    t = type(value)
    if t in ARRAY_TYPES:
        hooks = _hooks[t]
        root = hooks.root_of(value)
        if root is not value and id(root) in (roots if roots is not None else _roots_of(args)) \
                and hooks.writeable_view_of(value, root):
            deposit(value, g)   # a view of an input: its cotangent already sits in the input's shadow
            return None
        fresh[0] = True
        return tangents.add(g, take(value))
    if kind(value) is not None:
        if _is_among(value, args):   # an existing object (an argument or one of its items)
            _whole_deposit(value, g)
            return None
        fresh[0] = True
        return tangents.add(g, _whole_take(value))
    fresh[0] = True
    return g


def _may_hold_shadow(v):
    t = type(v)
    if t is float or t is int or t is bool or t is str or v is None:
        return False
    return t in ARRAY_TYPES or kind(v) is not None or isinstance(v, tuple)


def _is_among(out, args):
    """Is ``out`` one of ``args`` or reachable from them through lists, tuples and dicts (a few
    levels: ``d.get(k)`` returning a tuple that holds an existing dict)? Such a value is not a
    rule's fresh output: its shadow must not be collected as the output's cotangent."""
    for a in args:
        if _reaches(a, out, 0):
            return True
    return False


def _reaches(a, out, depth):
    if a is out:
        return True
    if depth >= 3:
        return False
    t = type(a)
    if t is tuple or t is list:
        return any(_reaches(v, out, depth + 1) for v in a)
    if t is dict:
        return any(_reaches(v, out, depth + 1) for v in a.values())
    return False


def with_effects(out, pb, args, pullbacks):
    """A rule that called user code (``map``'s function): when one of those calls has a pullback
    that must always run (it wrote in place), so does the rule's."""
    for p in pullbacks:
        if type(p) is ShadowPullback:
            return out, ShadowPullback(pb, args, out, "effects", len(args))
    return out, pb


def must_run(pb):
    """Must this pullback run even with a zero cotangent (its call wrote in place)?"""
    return type(pb) is ShadowPullback


def keep_must_run(inner, pb, out=None):
    """``pb`` adapts ``inner``'s cotangents (reorders, drops, prepends); if ``inner`` must always
    run, so must ``pb``: every adapter of a pullback goes through here."""
    if type(inner) is ShadowPullback:
        return ShadowPullback(pb, (), out, "call", 0)
    return pb


def wrap_rule(out, pb, args):
    """``(out, pb)`` from a rule called on ``args``, its pullback routed through the shadow
    when arrays are involved."""
    if pb is None:
        return out, None
    if type(pb) is ShadowPullback:
        return out, pb
    if type(out) in ARRAY_TYPES or involves_arrays(out) or _any_arrays(args):
        # a rule returning None writes into its arguments (np.copyto, ufunc.at): always run it
        kind = "call" if out is None else "rule"
        return out, ShadowPullback(pb, args, out, kind, len(args))
    return out, pb


def wrap_call(out, pb, args, always=False):
    """A Python callee's pullback (``pb(g, *seed) -> (..., *dargs)``): always run when arrays are
    involved or the callee writes in place, depositing array cotangents of ``args``."""
    if pb is None:
        return out, None
    if always or _any_arrays(args) or (type(out) is not float and involves_arrays(out)):
        return out, ShadowPullback(pb, args, out, "call", len(args))
    return out, pb


def _any_arrays(args):
    """Does any argument hold a value whose cotangent may live in the shadow?"""
    for a in args:
        t = type(a)
        if t is float or t is int:
            continue
        if t in ARRAY_TYPES or involves_arrays(a):
            return True
    return False


# --------------------------------------------------------------------------- batched sweeps
# ``jacobian`` pulls back many output cotangents in one sweep: array cotangents carry a leading
# batch axis (``tangents.BATCH``). Pullbacks registered as batch-capable take the whole batch; any
# other rule pullback runs once per cotangent, in a private unbatched store whose buffers are then
# added into the batched ones at that cotangent's position.

BATCH_CAPABLE = set()   # code objects of pullbacks that take a batch of cotangents


def batch_capable(*functions):
    """Declare pullbacks that work on a batch of cotangents (leading axis; see ``tangents.BATCH``).

    Each argument is a pullback function, or a rule (or rule factory) whose nested pullbacks (by
    their ``def`` names ending in ``pullback``) are declared."""
    for fn in functions:
        while hasattr(fn, "__wrapped__"):   # a rule as registered (pad_cotangents): its own code
            fn = fn.__wrapped__
        found = [c for c in _pullback_codes(fn.__code__) if c not in _PULLBACK_WRAPPERS]
        if not found:
            raise ValueError(f"batch_capable: {fn.__qualname__} neither is nor defines a pullback")
        BATCH_CAPABLE.update(found)


_PULLBACK_WRAPPERS = {}   # code of a pullback that only adapts another -> its closure cell index


def pullback_wrapper(factory, wrapped="pullback"):
    """Declare the pullbacks defined in ``factory`` as adapters of the pullback their closure
    holds under the name ``wrapped`` (they reorder or pad its cotangents): they take a batch of
    cotangents exactly when the pullback they wrap does."""
    for code in _pullback_codes(factory.__code__):
        if wrapped in code.co_freevars:
            _PULLBACK_WRAPPERS[code] = code.co_freevars.index(wrapped)
    return factory


def takes_batch(pb):
    """Does pullback ``pb`` work on a batch of cotangents (see ``batch_capable``)?"""
    code = getattr(pb, "__code__", None)
    while code not in BATCH_CAPABLE:
        index = _PULLBACK_WRAPPERS.get(code)
        if index is None:
            return False
        pb = pb.__closure__[index].cell_contents
        code = getattr(pb, "__code__", None)
    return True


def _pullback_codes(code):
    """``code`` and the code objects nested in it (rule factories, rules) named ``*pullback``."""
    found = [code] if code.co_name.endswith("pullback") else []
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            found.extend(_pullback_codes(c))
    return found


def _one_by_one(pb, g, n):
    """``pb`` (unaware of batches) run once per cotangent of the batch ``g``, results stacked."""
    outer_store = _state.store
    results, stores = [], []
    try:
        for b in range(n):
            BATCH.size = None
            store = _state.store = Store()
            _state.stack.append(store)
            try:
                results.append(pb(_element(g, b)))
            finally:
                _state.stack.pop()
                _state.store = outer_store
                BATCH.size = n
            stores.append(store)
    finally:
        BATCH.size = n
        _state.store = outer_store
    _merge(stores, n)
    return tuple(_stack([r[i] for r in results], n) for i in range(len(results[0])))


def _element(g, b):
    t = type(g)
    if t in ARRAY_TYPES:
        return g[b] if g.ndim else g   # 0-d: not a batch, a constant (zero) for every entry
    if t is tuple or t is list:
        return t(_element(v, b) for v in g)
    if t is dict:
        return {k: _element(v, b) for k, v in g.items()}
    if t is tangents.ObjectCotangent:
        return tangents.ObjectCotangent({k: _element(v, b) for k, v in g.fields.items()})
    if g is None or t is float or t is complex or t is int:
        return g   # None or an unbatched zero
    if getattr(g, "shape", None) == ():
        return g
    raise CannotBatch(f"a cotangent of type {t.__name__}")


def _stack(values, n):
    present = [v for v in values if v is not None]
    if not present:
        return None
    first = present[0]
    t = type(first)
    if t is tuple or t is list:
        size = len(first)
        return t(_stack([None if v is None else v[i] for v in values], n) for i in range(size))
    if t is dict:
        keys = {k for v in present for k in v}
        return {k: _stack([None if v is None else v.get(k) for v in values], n) for k in keys}
    if t is tangents.ObjectCotangent:
        keys = {k for v in present for k in v.fields}
        return tangents.ObjectCotangent(
            {k: _stack([None if v is None else v.fields.get(k) for v in values], n) for k in keys})
    zero = tangents.zeros_like(first)
    values = [zero if v is None else v for v in values]
    # the array type among the values stacks them (numbers alone: any array type that can)
    hooks = next((_hooks[type(v)] for v in values if type(v) in ARRAY_TYPES), None)
    if hooks is None or hooks.batch is None:
        hooks = next((h for h in _hooks.values() if h.batch is not None), None)
        if hooks is None:
            raise CannotBatch("no array type to stack cotangents with")
    return hooks.batch.stack(values)


def _merge(stores, n):
    """Add what each cotangent's pullback left in its private store into the batched store: array
    buffers at that cotangent's entry, item cotangents of lists, dicts and objects stacked."""
    for b, store in enumerate(stores):
        for root, buffer, _ in store.buffers.values():
            batched = view(root)
            if batched is None:
                raise CannotBatch("a buffer without a batched counterpart")
            batched[b] += buffer
    containers = {}
    for store in stores:
        for key, (x, _) in store.items.items():
            containers[key] = x
    for key, x in containers.items():
        per_entry = [store.items.get(key, (x, None))[1] for store in stores]
        if all(type(c) is list for c in per_entry if c is not None):
            size = max((len(c) for c in per_entry if c is not None), default=0)
            slots = range(size)
            get = (lambda c, k: c[k] if c is not None and k < len(c) else None)
        else:
            slots = {k for c in per_entry if c is not None for k in c}
            get = (lambda c, k: c.get(k) if c is not None else None)
        for slot in slots:
            stacked = _stack([get(c, slot) for c in per_entry], n)
            if stacked is not None:
                item_deposit(x, slot, stacked)
