"""Top-level config variables that do not reach the fields a base derived from them.

mmengine evaluates every base file on its own: by the time a child config is read, a base's
``model = dict(decode_head=dict(num_classes=num_classes))`` holds the literal ``21``, so a
child's ``num_classes = 2`` only adds a top-level key and the head keeps 21 classes (the same
holds for mmseg's own configs). A child config therefore sets the nested keys, as mmseg's
configs do::

    model = dict(decode_head=dict(num_classes=2))
    train_dataloader = dict(dataset=dict(data_root='data/mine'))
    train_cfg = dict(max_iters=2000)

:func:`check_config_vars` catches the trap: a top-level variable of :data:`VARIABLES` that the
config file sets without using it itself (or that ``--cfg-options`` sets), while every field it
names keeps another value, is a :class:`ConfigError` naming those keys and the value to set. A
variable a file uses where it is defined (``data_root=data_root``) is its own, never flagged.
"""
from typing import Any, Iterable, Iterator, List, Optional, Tuple

from .config_names import (ConfigFile, chain_files, misspelt_name, plain, runner_keys,
                           unreached_base_variable)

DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


class ConfigError(ValueError):
    """A config value does not fit the rest of the config (model, data or files)."""


def config_datasets(cfg) -> Iterator[Tuple[str, dict]]:
    """``(key, dataset dict)`` of every dataset of the data loaders, inside wrappers
    (``dataset``/``datasets``)."""

    def leaves(dataset, key):
        if not isinstance(dataset, dict):
            return
        if isinstance(dataset.get('dataset'), dict):
            yield from leaves(dataset['dataset'], f'{key}.dataset')
        elif isinstance(dataset.get('datasets'), (list, tuple)):
            for i, inner in enumerate(dataset['datasets']):
                yield from leaves(inner, f'{key}.datasets[{i}]')
        else:
            yield key, dataset

    for loader in DATALOADERS:
        if isinstance(cfg.get(loader), dict):
            yield from leaves(cfg[loader].get('dataset'), f'{loader}.dataset')


def _heads(cfg) -> Iterator[Tuple[str, Any]]:
    model = cfg.get('model') if isinstance(cfg.get('model'), dict) else {}
    for name in ('decode_head', 'auxiliary_head'):
        head = model.get(name)
        many = isinstance(head, (list, tuple))
        for i, h in enumerate(head if many else [head]):
            if isinstance(h, dict) and 'num_classes' in h:
                yield f'model.{name}' + (f'[{i}]' if many else '') + '.num_classes', \
                    h['num_classes']


def _dataset_field(field: str, meta: bool = False):

    def fields(cfg):
        for key, dataset in config_datasets(cfg):
            holder = dataset.get('metainfo') if meta else dataset
            if isinstance(holder, dict) and field in holder:
                yield f'{key}.' + ('metainfo.' if meta else '') + field, holder[field]

    return fields


def _train_max_iters(cfg):
    if isinstance(cfg.get('train_cfg'), dict) and 'max_iters' in cfg.train_cfg:
        yield 'train_cfg.max_iters', cfg.train_cfg['max_iters']


# variable -> the nested fields it is meant to set
VARIABLES = {
    'num_classes': _heads,
    'classes': _dataset_field('classes', meta=True),
    'palette': _dataset_field('palette', meta=True),
    'data_root': _dataset_field('data_root'),
    'img_suffix': _dataset_field('img_suffix'),
    'seg_map_suffix': _dataset_field('seg_map_suffix'),
    'max_iters': _train_max_iters,
}


def check_config_vars(cfg, option_keys: Iterable[str] = ()) -> None:
    """Raise :class:`ConfigError` for a top-level name that the config file sets without
    using it (or ``option_keys``, ``--cfg-options``, set) and that reaches nothing: a variable
    of :data:`VARIABLES` that differs from every nested field it names, a base config's
    variable (:func:`~.config_names.unreached_base_variable`) or a typo of a known name
    (:func:`~.config_names.misspelt_name`)."""
    own, bases = chain_files(cfg)
    names = set(own.unread() if own else ()) | set(option_keys)
    _check_variables(cfg, names)
    _check_other_names(cfg, names - set(VARIABLES), own, bases)


def _check_variables(cfg, names: set) -> None:
    for name, fields in VARIABLES.items():
        if name not in names or name not in cfg:
            continue
        value = plain(cfg[name])
        found = list(fields(cfg))
        wrong = [(key, v) for key, v in found if plain(v) != value]
        if not found or len(wrong) < len(found):  # it reached a field: a variable used as such
            continue
        shown = ', '.join(
            f'{key} = {plain(v)!r}'
            for key, v in wrong[:4]) + (f' (and {len(wrong) - 4} more)' if len(wrong) > 4 else '')
        raise ConfigError(
            f'{name} = {value!r} does not reach the fields it is meant to set: {shown}. '
            "mmengine evaluates a base config's variables when it reads the base, so a child "
            'config (or --cfg-options) must set the nested keys, as mmseg\'s configs do: ' +
            ', '.join(f'{key}={value!r}' for key, _ in wrong[:4]) + '.')


def _check_other_names(cfg, names: set, own: Optional[ConfigFile], bases: List[ConfigFile]) -> None:
    names = {n for n in names if '.' not in n and n in cfg}
    if not names:
        return
    in_bases = {n for base in bases for n in base.values}
    runner = runner_keys()
    known = in_bases | set(own.values if own else ()) | runner | set(VARIABLES)
    problems = []
    for name in sorted(names - runner):  # the runner's keys reach it, merged key by key
        if name in in_bases:
            problems.append(unreached_base_variable(cfg, name, bases))
        else:
            match = misspelt_name(name, known - {name})
            problems.append(match and _misspelt(cfg, name, match))
    problems = [p for p in problems if p]
    if problems:
        raise ConfigError(' Also: '.join(problems))


def _misspelt(cfg, name: str, match: str) -> str:
    where = ''
    if match in VARIABLES and match not in cfg:  # a variable of the custom config elsewhere
        keys = [key for key, _ in VARIABLES[match](cfg)]
        where = f' (here set as {", ".join(keys[:3])})' if keys else ''
    return (f'{name} = {plain(cfg[name])!r} is not a key any config of this chain or the '
            f'runner reads, so it would be ignored: did you mean {match!r}{where}?')


def load_config(path: str, cfg_options: Optional[dict] = None):
    """``Config.fromfile(path)`` with ``cfg_options`` (as ``--cfg-options``) merged, checked
    with :func:`check_config_vars`: what the tools and scripts load."""
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    check_config_vars(cfg, (cfg_options or {}).keys())
    return cfg
