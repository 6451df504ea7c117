"""Unknown config arguments of the plugin's classes are ConfigErrors with the closest name."""
import glob
import inspect
import os.path as osp

import pytest
from mmseg.evaluation.metrics import IoUMetric
from mmseg.registry import DATASETS, HOOKS, METRICS, MODELS, TRANSFORMS

from fcn_plugin.evaluation import FCNMetric
from fcn_plugin.utils.arguments import MARK, accepted_arguments, guard_arguments, registered_classes
from fcn_plugin.utils.config_vars import ConfigError
from fcn_plugin.utils.tool_errors import is_user_error, user_message

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def raises_suggesting(wrong, right, cls_name):
    return pytest.raises(
        ConfigError,
        match=rf"^{cls_name}: unknown argument '{wrong}' \(did you mean '{right}'\?\); "
        rf'{cls_name} accepts: .*\b{right}\b')


def test_metric_misspelt_argument():
    with raises_suggesting('per_image_iuo', 'per_image_iou', 'FCNMetric'):
        FCNMetric(per_image_iuo=True)
    with raises_suggesting('per_image_iuo', 'per_image_iou', 'FCNMetric'):
        METRICS.build(dict(type='FCNMetric', iou_metrics=['mIoU'], per_image_iuo=True))


@pytest.mark.parametrize(
    'registry, cfg, wrong, right',
    [
        (DATASETS, dict(type='CustomSegDataset', data_root='/nowhere',
                        img_sufix='.jpg'), 'img_sufix', 'img_suffix'),
        (DATASETS, dict(type='ValidatedDataset', dataset=dict(),
                        on_eror='skip'), 'on_eror', 'on_error'),
        (TRANSFORMS, dict(type='CheckSegFiles', max_pixel=10), 'max_pixel', 'max_pixels'),
        (MODELS, dict(type='FCNSkipHead', num_classes=2,
                      skip_scale=[1, 1]), 'skip_scale', 'skip_scales'),
        (MODELS, dict(type='VGG', depth=11, base_chanels=4), 'base_chanels', 'base_channels'),
        (HOOKS, dict(type='DivergenceHook',
                     check_intervals=5), 'check_intervals', 'check_interval'),
        # CheckpointHook would hand it to Runner.save_checkpoint at the first save
        (HOOKS, dict(type='AtomicCheckpointHook', intervl=5), 'intervl', 'interval'),
    ])
def test_misspelt_argument_built_through_the_registry(registry, cfg, wrong, right):
    with raises_suggesting(wrong, right, cfg['type']) as error:
        registry.build(cfg)  # stops before the class reads anything (no data here)
    assert is_user_error(error.value) and '\n' not in user_message(error.value)


def test_a_class_without_arguments():
    with pytest.raises(
            ConfigError,
            match="^DisabledHook: unknown argument 'x'; DisabledHook "
            'takes no arguments'):
        HOOKS.build(dict(type='DisabledHook', x=1))
    HOOKS.build(dict(type='DisabledHook'))


def test_the_init_chain():
    """Parents' names while **kwargs are passed on; names read from them; dropped ones end the
    chain (IoUMetric's); a use that cannot be followed leaves the class unchecked."""

    class Base:

        def __init__(self, a, b=1):
            pass

    class Child(Base):

        def __init__(self, c=0, *args, **kwargs):
            self.d = kwargs.pop('d', None)
            super().__init__(*args, **kwargs)

    class Dropping(IoUMetric):

        def __init__(self, x=1, **kwargs):
            super().__init__(ignore_index=3)

    class Storing(Base):

        def __init__(self, **kwargs):
            self.options = kwargs
            super().__init__(1)

    class NoInit(Child):
        pass

    assert accepted_arguments(Child) == ('c', 'd', 'a', 'b')
    assert accepted_arguments(NoInit) == ('c', 'd', 'a', 'b')
    assert accepted_arguments(Dropping) == ('x', )
    assert accepted_arguments(Storing) is None
    assert 'iou_metrics' in accepted_arguments(IoUMetric)  # its own names, none beyond

    for cls in (Child, NoInit, Storing):
        assert guard_arguments(cls) is cls
    init = Child.__init__
    guard_arguments(Child)  # idempotent
    assert Child.__init__ is init and accepted_arguments(Child) == ('c', 'd', 'a', 'b')
    assert str(inspect.signature(Child)) == '(c=0, *args, **kwargs)'
    assert NoInit(a=1, d=2).d == 2  # NoInit's wrapper, then Child's
    with pytest.raises(ConfigError, match=r"NoInit: unknown argument 'e'; .*: c, d, a, b\.$"):
        NoInit(a=1, e=2)
    with pytest.raises(ConfigError, match=r"arguments 'bb' \(did you mean 'b'\?\), 'zzz';"):
        Child(a=1, bb=2, zzz=3)
    assert Storing(anything=1).options == dict(anything=1)  # not checked: cannot tell


def test_every_plugin_class_is_checked_and_nothing_else():
    ours = registered_classes()
    assert {
        'FCNMetric', 'FCNSkipHead', 'CustomSegDataset', 'CheckSegFiles', 'DivergenceHook',
        'DisabledHook'
    } <= {cls.__name__
          for cls in ours}
    for cls in ours:
        assert cls.__module__.startswith('fcn_plugin.')
        assert getattr(vars(cls)['__init__'], MARK, None), cls
        assert accepted_arguments(cls) is not None, cls  # its arguments can be told
    for registry in (DATASETS, HOOKS, METRICS, MODELS, TRANSFORMS):
        for cls in registry.module_dict.values():
            if cls not in ours:
                assert not getattr(vars(cls).get('__init__'), MARK, None), cls


def test_shipped_configs_use_only_accepted_names(shipped_config):
    """Every dict of every config whose type is one of the plugin's classes."""
    names, ours = {}, set(registered_classes())
    for registry in (DATASETS, HOOKS, METRICS, MODELS, TRANSFORMS):
        names.update((k, c) for k, c in registry.module_dict.items() if c in ours)
    seen = set()

    def walk(node):
        if isinstance(node, dict):
            cls = names.get(node.get('type'))
            if cls is not None:
                seen.add(cls.__name__)
                keys = [k for k in node if k not in ('type', '_scope_')]
                assert set(keys) <= set(accepted_arguments(cls)), (path, node)
            for value in node.values():
                walk(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                walk(value)

    paths = sorted(glob.glob(osp.join(ROOT, 'configs', '*.py'))) + sorted(
        glob.glob(osp.join(ROOT, 'tests', 'configs', '*.py')))
    for path in paths:
        walk(shipped_config(path).to_dict())
    assert {'FCNMetric', 'FCNSkipHead', 'VGG', 'AtomicCheckpointHook'} <= seen


def test_training_stops_before_its_first_iteration(tmp_path, make_voc, tiny_cfg, build_runner):
    make_voc(tmp_path / 'voc', n_train=2, n_val=1)
    cfg = tiny_cfg(
        tmp_path / 'voc',
        tmp_path / 'work',
        val_evaluator=dict(type='FCNMetric', per_image_iuo=True))
    runner = build_runner(cfg)
    with raises_suggesting('per_image_iuo', 'per_image_iou', 'FCNMetric') as error:
        runner.train()
    assert runner.iter == 0 and not glob.glob(str(tmp_path / 'work' / '*.pth'))
    assert is_user_error(error.value)
    assert user_message(error.value).startswith("ConfigError: FCNMetric: unknown argument "
                                                "'per_image_iuo' (did you mean 'per_image_iou'?)")
