"""Interrupted runs: exact resume, a resume that does not replay the data, a kill while a
checkpoint is written (AtomicCheckpointHook)."""
import os
import os.path as osp
import shutil
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest
import torch
from mmcv.transforms import BaseTransform
from mmengine.config import Config
from mmengine.hooks import Hook
from mmseg.registry import HOOKS, TRANSFORMS

import fcn_plugin  # noqa: F401
from fcn_plugin.runtime import is_complete_checkpoint


class Interrupted(Exception):
    pass


@HOOKS.register_module(force=True)
class InterruptAfterIter(Hook):
    """Stands in for a killed job: raises after iteration ``stop`` was checkpointed."""
    priority = 'LOWEST'  # after CheckpointHook

    def __init__(self, stop):
        self.stop = stop

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.stop:
            raise Interrupted(f'stopped after iteration {self.stop}')


@pytest.fixture(scope='module')
def train_to_end(build_runner):
    """``train_to_end(cfg)``: a runner of ``cfg`` after ``train()``, its workers stopped."""

    def run(cfg):
        runner = build_runner(cfg)
        try:
            runner.train()
        finally:
            stop_train_workers(runner)
        return runner

    return run


def stop_train_workers(runner):
    """Shut the train dataloader's workers down now. Left to the garbage collector (a runner is
    in reference cycles), the worker queues may be finalised before the iterator, whose
    shutdown then waits 5 s per worker for workers that never hear of it."""
    iterator = getattr(runner.train_loop, 'dataloader_iterator', None)
    while iterator is not None and not hasattr(iterator, '_shutdown_workers'):
        iterator = vars(iterator).get('_iterator')  # _SeededFetches, mmengine's iterator
    if iterator is not None:
        iterator._shutdown_workers()


def weights_equal(a, b):
    assert a.keys() == b.keys()
    return all(torch.equal(a[k], b[k]) for k in a)


def mmengine_loop(cfg):
    """``cfg`` with mmengine's IterBasedTrainLoop and InfiniteSampler (same order)."""
    cfg = cfg.copy()
    cfg.train_cfg.type = 'IterBasedTrainLoop'
    cfg.train_dataloader.sampler.type = 'InfiniteSampler'
    return cfg


PLAIN_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
# a random transform in the data pipeline: in the main process (num_workers=0) its draws come
# from the loop's per-fetch seeding, so a wrong fetch number after resuming shows
FLIP_PIPELINE = PLAIN_PIPELINE[:2] + [dict(type='RandomFlip', prob=0.5)] + PLAIN_PIPELINE[2:]


def train_data(num_workers=0, persistent_workers=False, pipeline=None, **loader):
    """tiny_cfg overrides of train_dataloader (pipeline: the inner dataset's)."""
    data = dict(num_workers=num_workers, persistent_workers=persistent_workers, **loader)
    if pipeline is not None:
        data['dataset'] = dict(dataset=dict(pipeline=pipeline))
    return dict(train_dataloader=data)


@pytest.mark.usefixtures('one_thread')
@pytest.mark.parametrize(
    'num_workers,persistent,pipeline', [
        (0, False, None),
        (0, False, FLIP_PIPELINE),
        (2, False, None),
        (2, True, None),
    ],
    ids=['main-process', 'main-process-random-flip', '2-workers', '2-persistent-workers'])
def test_resume_is_bit_identical(tmp_path, num_workers, persistent, pipeline, make_voc, tiny_cfg,
                                 state_dict_of, train_to_end):
    """8 iterations straight vs. stopped after 3 (checkpoint at 3, validation at 2/4/6/8 drawing
    from torch's generator in between) and resumed with --resume: same weights, bit for bit,
    and the same optimizer state. Dropout 0.5, shuffled ResumableInfiniteSampler started at
    iteration 3 (no replay) by ResumableIterBasedTrainLoop, SGD momentum 0.99; with the data
    loaded in the main process (also with a random flip) or by 2 (persistent) workers."""
    make_voc(tmp_path / 'data')
    common = dict(
        max_iters=8,
        val_interval=2,
        ckpt_interval=3,
        lr=1e-4,
        **train_data(num_workers, persistent, pipeline))
    straight = tiny_cfg(tmp_path / 'data', tmp_path / 'straight', **common)
    train_to_end(straight)
    ref = state_dict_of(tmp_path / 'straight' / 'iter_8.pth')

    broken = tiny_cfg(
        tmp_path / 'data',
        tmp_path / 'broken',
        custom_hooks=[dict(type='InterruptAfterIter', stop=3)],
        **common)
    with pytest.raises(Interrupted):
        train_to_end(broken)
    assert sorted(p for p in os.listdir(tmp_path / 'broken')
                  if p.endswith('.pth')) == ['iter_3.pth']
    resumed = tiny_cfg(tmp_path / 'data', tmp_path / 'broken', resume=True, **common)
    runner = train_to_end(resumed)
    assert runner.iter == 8
    assert runner.train_loop.skipped_batches == 3  # positioned, not replayed
    assert runner.train_loop.dataloader_iterator.fetches == 8  # fetch numbers 3..7
    out = state_dict_of(tmp_path / 'broken' / 'iter_8.pth')
    assert weights_equal(ref['state_dict'], out['state_dict'])
    momentum = [s['momentum_buffer'] for s in ref['optimizer']['state'].values()]
    momentum_out = [s['momentum_buffer'] for s in out['optimizer']['state'].values()]
    assert all(torch.equal(a, b) for a, b in zip(momentum, momentum_out))
    # the weights did change, and differ from the checkpoint it resumed from
    start = state_dict_of(tmp_path / 'broken' / 'iter_3.pth')['state_dict']
    assert not weights_equal(start, out['state_dict'])
    if num_workers or pipeline is not None:
        return

    # mmengine's loop (replaying the same data order, seeding nothing) resumes with other
    # dropout masks: the test can fail.
    control = mmengine_loop(broken)
    control.work_dir = str(tmp_path / 'control')
    with pytest.raises(Interrupted):
        train_to_end(control)
    control_resumed = mmengine_loop(resumed)
    control_resumed.work_dir = str(tmp_path / 'control')
    train_to_end(control_resumed)
    out_control = state_dict_of(tmp_path / 'control' / 'iter_8.pth')['state_dict']
    assert not weights_equal(ref['state_dict'], out_control)


@TRANSFORMS.register_module(force=True)
class RecordLoads(BaseTransform):
    """Appends the loaded image's name to ``log`` (one line per sample, also from workers)."""

    def __init__(self, log):
        self.log = log

    def transform(self, results):
        with open(self.log, 'a') as f:
            f.write(osp.basename(results['img_path']) + '\n')
        return results


def read_loads(log):
    if not osp.exists(log):
        return []
    with open(log) as f:
        return f.read().split()


LOAD_ITERS, LOAD_BATCH = 10, 2


@pytest.fixture(scope='module')
def load_counting_cfg(tiny_cfg):
    """``load_counting_cfg(root, work_dir, log, **overrides)``: 10 iterations of batch 2
    (checkpoints every 2) on ``root/data``, each train sample loaded logged to ``log``."""

    def make(root, work_dir, log, **overrides):
        pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='RecordLoads', log=str(log)),
            dict(type='LoadAnnotations'),
            dict(type='PackSegInputs')
        ]
        data = overrides.pop('train_dataloader', {})
        data.setdefault('dataset', {}).setdefault('dataset', {})['pipeline'] = pipeline
        return tiny_cfg(
            root / 'data',
            work_dir,
            max_iters=LOAD_ITERS,
            ckpt_interval=2,
            val_interval=100,
            lr=1e-5,
            train_dataloader=dict(batch_size=LOAD_BATCH, **data),
            **overrides)

    return make


@pytest.fixture(scope='module')
def straight(tmp_path_factory, make_voc, train_to_end, load_counting_cfg):
    """An unbroken 10-iteration run (checkpoints at 2, 4, ...): its folder and the samples it
    loaded, in order."""
    root = tmp_path_factory.mktemp('straight_loads')
    make_voc(root / 'data')
    log = root / 'loads_straight.txt'
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_to_end(load_counting_cfg(root, root / 'straight', log))
    finally:
        torch.set_num_threads(threads)
    loads = read_loads(log)
    assert len(loads) == LOAD_ITERS * LOAD_BATCH
    return SimpleNamespace(root=root, loads=loads)


@pytest.fixture
def resume_counting_loads(load_counting_cfg, train_to_end):
    """``resume_counting_loads(straight, tmp_path, k, **overrides)``: resume the straight
    run's iter_k.pth in a new work dir: the samples it loaded, and the fetch number the loop
    reached (None for mmengine's loop, which does not count them)."""

    def run(straight, tmp_path, k, **overrides):
        log = tmp_path / f'loads_resumed_at_{k}.txt'
        work_dir = tmp_path / f'resumed_at_{k}'
        work_dir.mkdir()  # holds only iter_k.pth: the load policy resumes it
        shutil.copy(straight.root / 'straight' / f'iter_{k}.pth', work_dir)
        cfg = load_counting_cfg(straight.root, work_dir, log, resume=True, **overrides)
        runner = train_to_end(cfg)
        assert runner.iter == LOAD_ITERS
        return read_loads(log), getattr(runner.train_loop.dataloader_iterator, 'fetches', None)

    return run


@pytest.mark.usefixtures('one_thread')
def test_resume_does_not_load_the_batches_already_trained_on(tmp_path, straight,
                                                             resume_counting_loads):
    """Resumed at iteration 2 and at 8 of 10 (batch 2, data in the main process): each loads
    exactly the remaining iterations' samples, those the unbroken run loaded from there on, in
    its order. mmengine's loop (and ours with a sampler it cannot position) would load all 20
    samples both times, the first 2k only to throw them away."""
    for k in (2, 8):
        loads, fetches = resume_counting_loads(straight, tmp_path, k)
        assert loads == straight.loads[k * LOAD_BATCH:], k
        assert fetches == LOAD_ITERS  # the loop numbered the fetches k..9


@pytest.mark.usefixtures('one_thread')
@pytest.mark.parametrize('persistent', [False, True], ids=['workers', 'persistent-workers'])
def test_resume_with_workers_loads_at_most_the_prefetch_more(tmp_path, straight, persistent,
                                                             resume_counting_loads):
    """The same with 2 workers (prefetch_factor 1): the iterator mmengine builds before the
    checkpoint is loaded prefetches (and may load) 2 batches from position 0, and any iterator
    runs 2 batches ahead at the end: at most 2 x 2 x 2 samples more than the remaining ones,
    whatever the iteration resumed at. (A replay at 8 would load 16 more.)"""
    workers = dict(num_workers=2, prefetch_factor=1, persistent_workers=persistent)
    slack = 2 * workers['num_workers'] * workers['prefetch_factor'] * LOAD_BATCH
    for k in (2, 8):
        loads, fetches = resume_counting_loads(
            straight, tmp_path, k, train_dataloader=dict(workers))
        extra = list(loads)
        for name in straight.loads[k * LOAD_BATCH:]:  # every sample trained on was loaded
            assert name in extra, (k, name, loads)
            extra.remove(name)
        assert len(extra) <= slack, (k, loads)
        assert fetches == LOAD_ITERS


@pytest.mark.usefixtures('one_thread')
@pytest.mark.parametrize('how', ['mmengine-loop', 'not-positionable-sampler'])
def test_replay_fallback(tmp_path, straight, monkeypatch, how, resume_counting_loads):
    """Contrast, and the fallback: mmengine's IterBasedTrainLoop, or ResumableIterBasedTrainLoop
    with a sampler that cannot be positioned (warning naming it), replay the 16 samples of the
    8 iterations trained on; the data trained on and the fetch numbers are the same."""
    import fcn_plugin.runtime.exact_resume as exact_resume
    messages = []
    monkeypatch.setattr(exact_resume, 'print_log', lambda msg, *a, **k: messages.append(msg))
    if how == 'mmengine-loop':
        overrides = dict(train_cfg=dict(type='IterBasedTrainLoop'))
    else:
        overrides = dict(train_dataloader=dict(sampler=dict(type='InfiniteSampler')))
    loads, fetches = resume_counting_loads(straight, tmp_path, 8, **overrides)
    assert loads == straight.loads  # all 20: 16 replayed, then the remaining 4
    assert fetches == (None if how == 'mmengine-loop' else LOAD_ITERS)
    if how == 'not-positionable-sampler':
        assert any('InfiniteSampler' in m and 'fetches and discards 8 batches' in m
                   for m in messages), messages


KILL_DURING_SAVE = textwrap.dedent('''
    import os, sys
    import fcn_plugin
    from mmengine.config import Config
    from mmengine.fileio.backends import local_backend
    from mmengine.runner import Runner
    import torch
    torch.set_num_threads(1)
    put, saves = local_backend.LocalBackend.put, []

    def dying_put(self, obj, filepath):
        if str(filepath).endswith('.pth') or '.pth.tmp' in str(filepath):
            saves.append(filepath)
            if len(saves) == 2:  # the second checkpoint: half written, then SIGKILL-like exit
                with open(filepath, 'wb') as f:
                    f.write(obj[:len(obj) // 2])
                os._exit(9)
        return put(self, obj, filepath)

    local_backend.LocalBackend.put = dying_put
    Runner.from_cfg(Config.fromfile(sys.argv[1])).train()
''')


@pytest.fixture
def kill_during_second_save(tiny_cfg, repo_root):
    """``kill_during_second_save(tmp_path, works)``: for each ``{work dir: plain}``, trains
    tiny_cfg on ``tmp_path/data`` in a subprocess (checkpoints every 2 iterations,
    max_keep_ckpts=1; without AtomicCheckpointHook: mmengine's CheckpointHook if ``plain``)
    that dies while writing its second checkpoint. The processes run side by side."""

    def run(tmp_path, works):
        procs = []
        for work, plain in works.items():
            cfg = tiny_cfg(
                tmp_path / 'data',
                work,
                max_iters=6,
                ckpt_interval=2,
                val_interval=100,
                default_hooks=dict(checkpoint=dict(max_keep_ckpts=1)))
            if plain:
                cfg.default_hooks.checkpoint.type = 'CheckpointHook'
            config = tmp_path / f'{osp.basename(work)}_config.py'
            cfg.dump(str(config))
            procs.append(
                subprocess.Popen([sys.executable, '-c', KILL_DURING_SAVE,
                                  str(config)],
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE,
                                 text=True,
                                 cwd=repo_root,
                                 env=dict(os.environ, OMP_NUM_THREADS='1')))
        for proc in procs:
            _, stderr = proc.communicate()
            assert proc.returncode == 9, stderr[-3000:]

    return run


def checkpoint_names(folder):
    """The checkpoint names in ``folder`` (not the hidden temporary files)."""
    return sorted(n for n in os.listdir(folder) if n.endswith('.pth') and not n.startswith('.'))


@pytest.mark.usefixtures('one_thread')
def test_kill_during_save_keeps_a_complete_checkpoint(tmp_path, make_voc, tiny_cfg, train_to_end,
                                                      kill_during_second_save):
    """A process killed while writing its 2nd checkpoint (max_keep_ckpts=1): the 1st one is
    still there and complete, no truncated file carries a checkpoint name, and --resume
    continues from it to the end. Plain mmengine, for contrast, deletes the 1st checkpoint first
    and leaves a truncated iter_4.pth."""
    make_voc(tmp_path / 'data')
    work, plain = tmp_path / 'work', tmp_path / 'plain'
    kill_during_second_save(tmp_path, {work: False, plain: True})
    names = sorted(os.listdir(work))
    assert checkpoint_names(work) == ['iter_2.pth']
    assert is_complete_checkpoint(str(work / 'iter_2.pth'))
    assert any('.tmp-' in n for n in names)  # the half-written temporary file
    with open(work / 'last_checkpoint') as f:
        assert f.read().strip().endswith('iter_2.pth')

    # --resume with the config the killed run wrote its checkpoints with
    cfg = Config.fromfile(tmp_path / 'work_config.py', format_python_code=False)
    cfg.resume = True
    runner = train_to_end(cfg)
    assert runner.iter == 6
    assert not any('.tmp-' in n for n in os.listdir(work))  # cleaned up on the next start
    assert checkpoint_names(work) == ['iter_6.pth']

    assert checkpoint_names(plain) == ['iter_4.pth']
    assert not is_complete_checkpoint(str(plain / 'iter_4.pth'))
