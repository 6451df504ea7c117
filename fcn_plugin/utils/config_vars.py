"""Top-level config variables that reach the fields derived from them, in child configs too.

mmengine evaluates every base file on its own: by the time a child config is read, a base's
``model = dict(decode_head=dict(num_classes=num_classes))`` is the literal ``6``, so a child's
``num_classes = 2`` only changes the top-level key; the head keeps 6 classes. Likewise a
child's ``train_cfg = dict(max_iters=200)`` leaves ``PolyLR(end=max_iters)`` ending at 600,
and ``data_root = 'data/mine'`` leaves the data loaders reading the base's folder.

:func:`resolve_config_vars` fixes this after loading (and after ``--cfg-options``). A config
file that derives fields from a variable records the value it used, next to the variable::

    num_classes = 6
    derived_num_classes = num_classes   # the value the fields below were derived from
    model = dict(decode_head=dict(num_classes=num_classes))

A config that sets a variable without deriving anything new from it needs no record (the
base's record tells what changed); one that derives a new field from it (say ``PolyLR(end=
max_iters)``) records the value and derives the base's fields again (``train_cfg =
dict(max_iters=max_iters)``), so that its own children can change it in turn.

For each variable in :data:`~.config_fields.VARIABLES`, its *sources* are the top-level variable
and the fields that must agree with it, its *followers* fields derived from it that may also be
set otherwise (which fields: :mod:`.config_fields`). A source
whose value differs from the recorded one was changed (by a child config or
``--cfg-options``): that value is written into every other source and into every follower
still at the recorded value. Two different new values name both keys in a
:class:`~fcn_plugin.engine.ConfigError`. When ``classes`` changes and ``num_classes`` does not,
``num_classes`` becomes ``len(classes)``. Without a record (a config not written this way),
sources that disagree are an error naming them; nothing is changed.

Who applies it: ``tools/train.py``, ``tools/test.py``, ``tools/infer.py``,
``tools/check_dataset.py`` and ``tools/precision_agreement.py`` (:func:`load_config`: after
loading and again after ``--cfg-options``); mmseg's own ``tools/train.py`` /
``tools/test.py`` through ``runner_type = 'FCNRunner'`` (``configs/_base_/fcn_runtime.py``);
``ConfigCheckHook`` re-checks (``apply=False``) and stops a run whose config was not resolved
(``Runner.from_cfg`` called directly) with both keys named. For ``mmseg.apis.init_model`` pass
the config resolved: ``init_model(load_config(path), checkpoint)``.
"""
import copy
from typing import Any, List, NamedTuple, Optional

from .config_fields import VARIABLES, Variable

RECORD_PREFIX = 'derived_'


class Finding(NamedTuple):
    """One field that differs from its variable: ``key`` is ``current``, should be ``value``
    (the value of ``source``)."""
    variable: str
    key: str
    current: Any
    value: Any
    source: str


def _plain(v):
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _same(a, b) -> bool:
    return _plain(a) == _plain(b)


def _show(v) -> str:
    return repr(_plain(v))


class ConfigError(ValueError):
    """A config value does not fit the rest of the config (model, data or files)."""



def _distinct(values: list) -> list:
    out = []
    for v in values:
        if not any(_same(v, u) for u in out):
            out.append(v)
    return out


def _resolve_one(cfg, var: Variable) -> List[Finding]:
    name, record_key = var.name, RECORD_PREFIX + var.name
    values = ([(name, cfg, name)] if name in cfg else []) + list(var.sources(cfg))
    followers = list(var.followers(cfg))
    if record_key not in cfg:  # a config not written with records: only check agreement
        if values:
            ref_key, ref = values[0][0], values[0][1][values[0][2]]
            for k, d, f in values[1:]:
                if not _same(d[f], ref):
                    raise ConfigError(
                        f'{ref_key} = {_show(ref)} but {k} = {_show(d[f])}: they must be equal. '
                        f'If a child config set {name}, mmengine did not pass it on (it '
                        "evaluates a base's variables when the base is parsed): set "
                        f'{k} too, or record the variable where the base derives from it '
                        f'({record_key} = {name}; see fcn_plugin/utils/config_vars.py).')
        return []
    recorded = cfg[record_key]
    changed = [(k, d[f]) for k, d, f in values if not _same(d[f], recorded)]
    distinct = _distinct([v for _, v in changed])
    if len(distinct) > 1:
        shown = ', '.join(f'{k} = {_show(v)}' for k, v in changed)
        raise ConfigError(
            f'{shown}: these must be equal; the base config derived them all from {name} = '
            f'{_show(recorded)}. Set {name} (the top-level variable) only, or set each of them '
            'to the same value.')
    if not distinct:
        return []
    source, new = changed[0]
    findings = [Finding(name, k, d[f], new, source) for k, d, f in values
                if not _same(d[f], new)]
    findings += [Finding(name, k, d[f], new, source) for k, d, f in followers
                 if _same(d[f], recorded)]
    targets = {k: (d, f) for k, d, f in values + followers}
    for finding in findings:
        d, f = targets[finding.key]
        d[f] = new
    cfg[record_key] = new
    return findings


def _follow_classes(cfg, found: List[Finding]) -> List[Finding]:
    """``classes`` changed and ``num_classes`` not: ``num_classes = len(classes)``."""
    changed = [f for f in found if f.variable == 'classes']
    if not changed or 'num_classes' not in cfg:
        return []
    classes = changed[0].value
    recorded = cfg.get(RECORD_PREFIX + 'num_classes', cfg['num_classes'])
    if cfg['num_classes'] != recorded or len(classes) == recorded:
        return []
    cfg['num_classes'] = len(classes)
    return [Finding('num_classes', 'num_classes', recorded, len(classes), changed[0].source)]


def resolve_config_vars(cfg, apply: bool = True) -> List[Finding]:
    """Propagate the top-level ``num_classes``/``classes``/``palette``/``data_root``/
    ``max_iters`` (or a changed field derived from them) into every derived field.

    ``cfg`` (an mmengine ``Config`` or dict) is changed in place if ``apply``, else a copy is.
    Returns the changes made (or needed); raises ``ConfigError`` naming the keys when two
    fields were changed to different values, or, in a config without records, when they
    disagree. Idempotent.
    """
    if not apply:
        cfg = copy.deepcopy(cfg)
    found: List[Finding] = []
    for var in VARIABLES:
        if var.name == 'num_classes':
            found += _follow_classes(cfg, found)
        found += _resolve_one(cfg, var)
    return found


UNRESOLVED_HINT = (
    "A child config's variable does not reach the fields its base derived from it (mmengine "
    "evaluates a base's variables when the base is parsed). Build the runner with "
    "runner_type='FCNRunner' (configs/_base_/fcn_runtime.py sets it; tools/train.py, "
    "tools/test.py and mmseg's tools use it), or call "
    'fcn_plugin.utils.config_vars.resolve_config_vars(cfg) first.')


def check_config_vars(cfg) -> None:
    """Raise ``ConfigError`` naming both keys if a derived field disagrees with its variable
    (what :func:`resolve_config_vars` would change)."""
    findings = [f for f in resolve_config_vars(cfg, apply=False) if f.key != f.source]
    if not findings:
        return
    parts = []
    for source in dict.fromkeys(f.source for f in findings):
        group = [f for f in findings if f.source == source]
        first = group[0]
        more = (f' (and {len(group) - 1} more field(s) derived from {first.variable}: '
                + ', '.join(f.key for f in group[1:4]) + (', ...' if len(group) > 4 else '')
                + ')') if len(group) > 1 else ''
        parts.append(f'{source} = {_show(first.value)} but {first.key} = '
                     f'{_show(first.current)}{more}')
    raise ConfigError('; '.join(parts) + '. ' + UNRESOLVED_HINT)


def load_config(path: str, cfg_options: Optional[dict] = None):
    """``Config.fromfile(path)`` with its variables resolved, then ``cfg_options`` (as
    ``--cfg-options``) merged and resolved again: for the tools, scripts and
    ``mmseg.apis.init_model(load_config(path), checkpoint)``.

    Resolving before the options too means an option such as ``max_iters=80`` also reaches
    fields that the config file itself derived from its own value of the variable.
    """
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    resolve_config_vars(cfg)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
        resolve_config_vars(cfg)
    return cfg
