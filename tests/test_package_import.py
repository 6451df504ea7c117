"""``import fcn_plugin`` (what a config's custom_imports does) registers new names and changes
nothing mmseg or mmengine registered; it only extends torch's weights-only allowlist, so that
mmengine's checkpoints load with ``torch.load(weights_only=True)``. Seen from a fresh process
(the test session has imported the plugin already): one interpreter reports every effect."""
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.runner import save_checkpoint

IMPORT_EFFECTS = textwrap.dedent('''
    import json, sys, warnings; warnings.filterwarnings('ignore')
    import torch
    import mmengine.registry as E, mmseg.registry as R
    import mmengine.hooks, mmengine.runner, mmseg.apis, mmseg.datasets, mmseg.engine
    import mmseg.evaluation, mmseg.models, mmseg.visualization
    from mmengine.runner.checkpoint import CheckpointLoader as C

    def loads(path):
        try:
            torch.load(path, weights_only=True)
            return True
        except Exception:
            return False

    registries = {f'{m.__name__}.{n}': r for m in (E, R) for n, r in vars(m).items()
                  if isinstance(r, E.Registry)}
    before = {k: dict(r.module_dict) for k, r in registries.items()}
    schemes = dict(C._schemes)
    loaded_before = loads(sys.argv[1])
    import fcn_plugin

    def shadows(registry, name):  # a name of a parent registry (mmengine's for mmseg's)
        parent = registry.parent
        while parent is not None:
            if name in parent.module_dict:
                return True
            parent = parent.parent
        return False

    print(json.dumps(dict(
        replaced=[[k, n] for k, d in before.items() for n, v in d.items()
                  if registries[k].module_dict.get(n) is not v],
        shadowing=[[k, n] for k, r in registries.items()
                   for n in set(r.module_dict) - set(before[k]) if shadows(r, n)],
        added=sorted(n for k, r in registries.items() for n in set(r.module_dict) - set(before[k])),
        same_loaders=list(C._schemes) == list(schemes) and
        all(C._schemes[k] is v for k, v in schemes.items()),
        loaded_before=loaded_before, loaded_after=loads(sys.argv[1]))))
''')


def runner_like_checkpoint(path):
    """What mmengine 0.10.7's Runner.save_checkpoint writes (meta, hub, optimizer, schedulers)."""
    model = torch.nn.Conv2d(2, 2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.99)
    model(torch.randn(1, 2, 3, 3)).sum().backward()
    optimizer.step()
    scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0)
    hub = MessageHub.get_instance('fcn_import_test')
    for i in range(3):
        hub.update_scalar('train/loss', 1.0 / (i + 1))
    hub.update_info('iter', 3)
    meta = dict(
        epoch=0,
        iter=3,
        seed=np.int64(7),
        experiment_name='x',
        mmengine_version='0.10.7',
        dataset_meta=dict(classes=('background', 'object'), palette=[[0, 0, 0]]))
    save_checkpoint(
        dict(
            meta=meta,
            state_dict=model.state_dict(),
            message_hub=hub.state_dict(),
            optimizer=optimizer.state_dict(),
            param_schedulers=[scheduler.state_dict()]), str(path))


@pytest.fixture(scope='module')
def effects(tmp_path_factory):
    path = tmp_path_factory.mktemp('import') / 'iter_3.pth'
    runner_like_checkpoint(path)
    result = subprocess.run(
        [sys.executable, '-c', IMPORT_EFFECTS, str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_importing_the_plugin_replaces_nothing(effects):
    """Every name mmengine's and mmseg's registries held before still maps to the same object,
    and no added name hides one of a parent registry (as a ``LoggerHook`` in mmseg's HOOKS hid
    mmengine's)."""
    assert effects['replaced'] == [] and effects['shadowing'] == []
    assert {'FCNSkipHead', 'VGG', 'LoadPolicyHook', 'PreflightHook'} <= set(effects['added'])


def test_importing_the_plugin_keeps_mmengines_loaders(effects):
    """It only extends torch's allowlist: every registered checkpoint loader is still
    mmengine's own object."""
    assert effects['same_loaders']


def test_runner_checkpoint_needs_and_gets_the_allowlist(effects):
    """torch alone refuses a checkpoint of mmengine's runner (HistoryBuffer, numpy scalars)
    with weights_only=True; after ``import fcn_plugin`` it loads."""
    assert not effects['loaded_before'] and effects['loaded_after']
