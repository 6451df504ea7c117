"""Where each config variable of :mod:`.config_vars` is used: its sources and followers.

A *target* is one field: ``(key for messages, the dict that holds it, the key in that dict)``.
Each :class:`Variable` names the functions that find its targets in a config: *sources* must
agree with the top-level variable (``num_classes``: the heads' ``num_classes`` and every
``CheckSegSample.num_classes``; ``max_iters``: ``train_cfg.max_iters``; ``classes``: the
datasets' ``metainfo.classes``); *followers* are derived from it but may also be set otherwise
(``data_root``: the datasets' ``data_root``; ``max_iters``: the iteration-based
``param_scheduler`` entries' ``end``/``T_max``; ``palette``: ``metainfo.palette``). Datasets are
found in the three data loaders, inside dataset wrappers (``dataset``/``datasets``); pipelines at
the top level (``*_pipeline``) and in every dataset, inside ``TestTimeAug``-like wrappers.
"""
from typing import Any, Callable, Iterator, NamedTuple, Tuple

DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')

# A target: (config key for messages, the dict that holds it, the key in that dict).
Target = Tuple[str, Any, str]


def _is_dict(value) -> bool:
    return isinstance(value, dict)


def _heads(cfg) -> Iterator[Target]:
    model = cfg.get('model')
    if not _is_dict(model):
        return
    for name in ('decode_head', 'auxiliary_head'):
        head = model.get(name)
        heads = head if isinstance(head, (list, tuple)) else [head]
        for i, h in enumerate(heads):
            if _is_dict(h) and h.get('num_classes') is not None:
                key = f'model.{name}' + (f'[{i}]' if isinstance(head, (list, tuple)) else '')
                yield f'{key}.num_classes', h, 'num_classes'


def _leaf_datasets(dataset, key: str) -> Iterator[Tuple[str, Any]]:
    """``(key, dataset dict)`` of every dataset inside wrappers (``dataset``/``datasets``)."""
    if not _is_dict(dataset):
        return
    inner = dataset.get('dataset')
    many = dataset.get('datasets')
    if _is_dict(inner):
        yield from _leaf_datasets(inner, f'{key}.dataset')
    elif isinstance(many, (list, tuple)):
        for i, d in enumerate(many):
            yield from _leaf_datasets(d, f'{key}.datasets[{i}]')
    else:
        yield key, dataset


def config_datasets(cfg) -> Iterator[Tuple[str, Any]]:
    for loader in DATALOADERS:
        value = cfg.get(loader)
        if _is_dict(value):
            yield from _leaf_datasets(value.get('dataset'), f'{loader}.dataset')


def _pipelines(cfg) -> Iterator[Tuple[str, Any]]:
    """``(key, pipeline list)``: top-level ``*_pipeline`` and every dataset's ``pipeline``."""
    for key in list(cfg.keys()):
        if key.endswith('_pipeline') and isinstance(cfg.get(key), (list, tuple)):
            yield key, cfg.get(key)
    for key, dataset in config_datasets(cfg):
        if isinstance(dataset.get('pipeline'), (list, tuple)):
            yield f'{key}.pipeline', dataset['pipeline']


def _transforms(pipeline, key: str) -> Iterator[Tuple[str, Any]]:
    for i, t in enumerate(pipeline):
        if _is_dict(t):
            yield f'{key}[{i}]', t
            for name in ('transforms', ):  # TestTimeAug, Compose-like wrappers
                inner = t.get(name)
                if isinstance(inner, (list, tuple)):
                    yield from _transforms(inner, f'{key}[{i}].{name}')
        elif isinstance(t, (list, tuple)):  # TestTimeAug's list of lists
            yield from _transforms(t, f'{key}[{i}]')


def _sample_checks(cfg) -> Iterator[Target]:
    for key, pipeline in _pipelines(cfg):
        for tkey, t in _transforms(pipeline, key):
            if t.get('type') == 'CheckSegSample' and t.get('num_classes') is not None:
                yield f'{tkey}.num_classes', t, 'num_classes'


def _metainfo(cfg, field: str) -> Iterator[Target]:
    for key, dataset in config_datasets(cfg):
        meta = dataset.get('metainfo')
        if _is_dict(meta) and meta.get(field) is not None:
            yield f'{key}.metainfo.{field}', meta, field


def _data_roots(cfg) -> Iterator[Target]:
    for key, dataset in config_datasets(cfg):
        if dataset.get('data_root') is not None:
            yield f'{key}.data_root', dataset, 'data_root'


def _train_max_iters(cfg) -> Iterator[Target]:
    train_cfg = cfg.get('train_cfg')
    if _is_dict(train_cfg) and train_cfg.get('max_iters') is not None:
        yield 'train_cfg.max_iters', train_cfg, 'max_iters'


def _scheduler_ends(cfg) -> Iterator[Target]:
    schedulers = cfg.get('param_scheduler')
    many = isinstance(schedulers, (list, tuple))
    for i, s in enumerate(schedulers if many else [schedulers]):
        if not _is_dict(s) or s.get('by_epoch', True):
            continue  # epoch-based (or converted from epochs): its end is in epochs
        for field in ('end', 'T_max'):
            if s.get(field) is not None:
                yield ('param_scheduler' + (f'[{i}]' if many else '') + f'.{field}', s, field)


class Variable(NamedTuple):
    name: str
    sources: Callable[[Any], Iterator[Target]]
    followers: Callable[[Any], Iterator[Target]]


def _none(cfg) -> Iterator[Target]:
    return iter(())


def _both(*fns):
    def gen(cfg):
        for fn in fns:
            yield from fn(cfg)
    return gen


def _classes(cfg) -> Iterator[Target]:
    return _metainfo(cfg, 'classes')


def _palettes(cfg) -> Iterator[Target]:
    return _metainfo(cfg, 'palette')


# Order matters: ``classes`` before ``num_classes`` (which follows ``len(classes)``).
VARIABLES = (
    Variable('classes', _classes, _none),
    Variable('palette', _none, _palettes),
    Variable('num_classes', _both(_heads, _sample_checks), _none),
    Variable('data_root', _none, _data_roots),
    Variable('max_iters', _train_max_iters, _scheduler_ends),
)
