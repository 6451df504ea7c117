"""Unknown config arguments are errors: a misspelt key of a plugin class stops the build.

mmengine's registries build a component as ``cls(**cfg)``. A class that takes ``**kwargs`` and
drops them (mmseg's ``IoUMetric``) ignores a misspelt key; one that passes them on fails only
where they land, or only when they are used (mmengine's ``CheckpointHook`` hands its extra
keywords to ``Runner.save_checkpoint`` at the first save); a class with an explicit signature
raises Python's ``TypeError``, a traceback without a suggestion.

:func:`guard_registered_arguments` (run once by ``import fcn_plugin``, after every module has
registered its classes) wraps the ``__init__`` of each class that ``fcn_plugin`` registered in
mmseg's registries -- found there by its module; nothing mmseg or mmengine registered is
touched -- so that the keyword arguments it gets are checked before the real ``__init__``
runs. An unknown name raises :class:`~fcn_plugin.utils.config_vars.ConfigError`, which the
tools end with one line, naming the class, the argument, the closest accepted name
(``difflib.get_close_matches``) and the accepted names::

    ConfigError: FCNMetric: unknown argument 'per_image_iuo' (did you mean 'per_image_iou'?);
    FCNMetric accepts: ignore_index, per_image_iou, output_dir, ...

The accepted names (:func:`accepted_arguments`) follow the ``__init__`` chain along the MRO:
each ``__init__``'s named parameters; past one with ``**kwargs`` only while it passes them on
to a parent's ``__init__`` (``super().__init__(**kwargs)``, read from its source). One that
only reads names from them (``kwargs.pop('x')``, ``kwargs.get('x')``, ``kwargs['x']``) adds
those; one that drops them (``IoUMetric``) ends the chain; a class whose ``**kwargs`` go
somewhere this cannot follow is not checked (:data:`KWARGS_ACCEPT` names the known ones).
Direct calls (``FCNMetric(per_image_iuo=True)``) are checked the same way.
"""
import ast
import difflib
import functools
import inspect
import textwrap
from typing import Dict, Iterable, List, Optional, Tuple

from .config_vars import ConfigError

MARK = '_fcn_checked_init'  # on a wrapper: 'own' (wraps the class's __init__) or 'inherited'

# parents whose **kwargs go where the source cannot be followed: the names they take there
KWARGS_ACCEPT: Dict[str, Tuple[str, ...]] = {
    # its **kwargs go to Runner.save_checkpoint, each of whose arguments it already sets:
    # any extra name fails with a TypeError at the first save
    'mmengine.hooks.checkpoint_hook.CheckpointHook': (),
}
READS = ('pop', 'get', 'setdefault')


def _parents(tree: ast.AST) -> dict:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _string(node) -> Optional[str]:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def kwargs_use(func, varkw: str) -> Optional[Tuple[bool, List[str]]]:
    """How ``func`` (an ``__init__``) uses its ``**varkw``: ``(passed on to an __init__, the
    names it reads)``, or None when the source is unavailable or uses them otherwise."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError):
        return None
    parents = _parents(tree)
    forwarded, read = False, []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Name) and node.id == varkw):
            continue
        up = parents.get(node)
        call = parents.get(up)
        if isinstance(up, ast.keyword) and up.arg is None and isinstance(
                call.func, ast.Attribute) and call.func.attr == '__init__':
            forwarded = True  # super().__init__(**kwargs), Parent.__init__(self, **kwargs)
        elif isinstance(up, ast.Attribute) and up.attr in READS and isinstance(
                call, ast.Call) and call.func is up and call.args and _string(call.args[0]):
            read.append(_string(call.args[0]))  # kwargs.pop('x', ...)
        elif isinstance(up, ast.Subscript) and up.value is node and _string(up.slice):
            read.append(_string(up.slice))  # kwargs['x']
        elif isinstance(up, ast.Compare) and up.comparators == [node] and _string(up.left):
            read.append(_string(up.left))  # 'x' in kwargs
        else:
            return None  # stored, iterated, passed elsewhere: cannot tell
    return forwarded, read


def _original_init(cls):
    """The ``__init__`` ``cls`` itself defines (unwrapped), 'inherited' for a wrapper this
    module put on a class without one, or None."""
    init = vars(cls).get('__init__')
    if getattr(init, MARK, None) == 'inherited':
        return 'inherited'
    return getattr(init, '__wrapped__', init) if getattr(init, MARK, None) else init


def accepted_arguments(cls) -> Optional[Tuple[str, ...]]:
    """The keyword arguments ``cls(...)`` accepts along its ``__init__`` chain (module doc),
    or None when that cannot be told (then nothing is checked)."""
    names: List[str] = []

    def add(new: Iterable[str]):
        names.extend(n for n in new if n not in names)

    for klass in cls.__mro__:
        init = _original_init(klass)
        if init is None or init == 'inherited':
            continue
        if klass is object:
            break
        if not inspect.isfunction(init):  # a C-level __init__ other than object's
            return None
        spec = inspect.getfullargspec(init)
        add(spec.args[1:] + spec.kwonlyargs)
        if spec.varkw is None:
            break
        known = f'{klass.__module__}.{klass.__qualname__}'
        if known in KWARGS_ACCEPT:
            add(KWARGS_ACCEPT[known])
            break
        use = kwargs_use(init, spec.varkw)
        if use is None:
            return None
        forwarded, read = use
        add(read)
        if not forwarded:  # dropped (IoUMetric): only the names it read count
            break
    return tuple(names)


def unknown_arguments_message(cls_name: str, unknown: Iterable[str],
                              accepted: Iterable[str]) -> str:
    """``<Class>: unknown argument 'x' (did you mean 'y'?); <Class> accepts: ...``."""
    accepted = list(accepted)
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, accepted, n=1)
        parts.append(repr(name) + (f' (did you mean {close[0]!r}?)' if close else ''))
    plural = 's' if len(parts) > 1 else ''
    what = (f'{cls_name} accepts: {", ".join(accepted)}'
            if accepted else f'{cls_name} takes no arguments')
    return f'{cls_name}: unknown argument{plural} {", ".join(parts)}; {what}.'


def check_arguments(cls, kwargs: Iterable[str], accepted: Optional[Iterable[str]] = None) -> None:
    """Raise ConfigError if a name of ``kwargs`` is not one ``cls`` accepts
    (:func:`accepted_arguments` unless ``accepted`` is given)."""
    accepted = accepted_arguments(cls) if accepted is None else tuple(accepted)
    if accepted is None:
        return
    unknown = [name for name in kwargs if name not in accepted]
    if unknown:
        raise ConfigError(unknown_arguments_message(cls.__name__, unknown, accepted))


def guard_arguments(cls):
    """Check the keyword arguments of ``cls(...)`` (and of ``super().__init__`` calls reaching
    its ``__init__``) before the real ``__init__`` runs; returns ``cls`` (usable as a
    decorator). Idempotent."""
    own = vars(cls).get('__init__')
    if getattr(own, MARK, None):
        return cls
    accepted = []  # computed at the first call: importing stays cheap

    def check(kwargs):
        if kwargs:
            if not accepted:
                accepted.append(accepted_arguments(cls))
            if accepted[0] is not None:
                check_arguments(cls, kwargs, accepted[0])

    if own is not None:

        @functools.wraps(own)
        def __init__(self, *args, **kwargs):
            check(kwargs)
            own(self, *args, **kwargs)

        setattr(__init__, MARK, 'own')
    else:

        def __init__(self, *args, **kwargs):
            check(kwargs)
            super(cls, self).__init__(*args, **kwargs)

        __init__.__qualname__ = f'{cls.__qualname__}.__init__'
        setattr(__init__, MARK, 'inherited')
    cls.__init__ = __init__
    return cls


def registered_classes(prefix: str = 'fcn_plugin') -> List[type]:
    """The classes registered in mmseg's registries whose module is ``prefix`` or in it."""
    import mmseg.registry
    from mmengine.registry import Registry
    found = []
    for registry in vars(mmseg.registry).values():
        if not isinstance(registry, Registry):
            continue
        for obj in registry.module_dict.values():
            module = getattr(obj, '__module__', '') or ''
            if inspect.isclass(obj) and (module == prefix or module.startswith(prefix + '.')) \
                    and obj not in found:
                found.append(obj)
    return found


def guard_registered_arguments(prefix: str = 'fcn_plugin') -> List[type]:
    """:func:`guard_arguments` on every class of :func:`registered_classes`; returns them."""
    classes = registered_classes(prefix)
    for cls in classes:
        guard_arguments(cls)
    return classes
