"""fcn_plugin.apis.fault_suite's own parts (the experiment itself takes minutes; the README
names it): the hostile files are what they claim to be, a run is killed and measured, logs and
checkpoint folders are read right, each run gets its verdict, and the report and
tools/fault_injection.py add them up (the cases replaced by stand-ins)."""
import errno
import importlib
import json
import os
import os.path as osp
import pickle
import sys
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from fcn_plugin.apis.fault_runs import (KEEP, Context, checkpoints, completed_saves, finite, judge,
                                        loads, resumed_at, same_weights)
from fcn_plugin.apis.fault_suite import FaultInjectionError, FaultReport, fault_injection
from fcn_plugin.apis.faults import DATA_FAULTS, corrupt_sample, make_pickle_bomb, make_zip_bomb, run
from fcn_plugin.utils.checkpoint_safety import load_weights_only

# the module, not the function of the same name that fcn_plugin.apis exports
API = importlib.import_module('fcn_plugin.apis.fault_suite')


# ------------------------------------------------------------------------------ hostile files
def test_hostile_checkpoints(tmp_path):
    marker = str(tmp_path / 'ran')
    make_pickle_bomb(str(tmp_path / 'evil.pth'), marker)
    with pytest.raises(pickle.UnpicklingError):
        load_weights_only(str(tmp_path / 'evil.pth'))
    assert not osp.exists(marker)
    torch.load(str(tmp_path / 'evil.pth'), weights_only=False)  # what it would do unsafely
    assert osp.exists(marker)

    make_zip_bomb(str(tmp_path / 'bomb.pth'), 64 << 20)
    with zipfile.ZipFile(tmp_path / 'bomb.pth') as archive:
        info = archive.getinfo('archive/data.pkl')
    assert info.file_size == 64 << 20 and info.compress_size * 500 < info.file_size


@pytest.mark.parametrize('fault', DATA_FAULTS)
def test_corrupt_sample(tmp_path, make_voc, fault):
    root = str(tmp_path / 'voc')
    make_voc(root, n_train=2, n_val=1)
    bad = corrupt_sample(root, fault, bomb_side=3000)
    assert osp.basename(bad).startswith('2007_000000')
    if fault == 'missing image':
        assert not osp.lexists(bad)
    elif fault == 'symlink loop':
        with pytest.raises(OSError) as error:
            open(bad, 'rb')
        assert error.value.errno == errno.ELOOP
    elif fault in ('truncated JPEG', 'corrupt PNG'):
        with pytest.raises(Exception):
            Image.open(bad).load()
    else:
        image = Image.open(bad)
        if fault.startswith('decompression'):
            assert image.format == 'PNG' and image.size == (3000, 3000)
        elif fault == 'colour label':
            assert image.mode == 'RGB'
        elif fault == 'label out of range':
            assert (np.array(image)[:4, :4] == 9).all()  # the toy data has 6 classes
        else:
            assert image.size == (28 + 7, 20 + 5)


# -------------------------------------------------------------------------------- processes
def test_run_kills_and_measures(tmp_path):
    child = ('import time; x = bytearray(80 << 20); x[::4096] = b"1" * len(x[::4096]); '
             'print("ready", flush=True); time.sleep(60)')
    r = run([sys.executable, '-c', child],
            str(tmp_path / 'log'),
            dict(os.environ),
            kill_when=lambda tail: 'ready' in tail.read())
    assert r['rc'] == -9 and r['killed'] is not None and r['killed'] < 30
    assert r['peak_mib'] >= 80
    r = run([sys.executable, '-c', 'import sys; sys.exit("bad thing: named.file")'],
            str(tmp_path / 'log2'), dict(os.environ))
    assert r['rc'] == 1 and r['last'] == 'bad thing: named.file' and r['killed'] is None


# -------------------------------------------------------------------- logs, folders, verdicts
LOG = '''\
12/05 02:00:01 - mmengine - INFO - resumed epoch: 0, iter: 8
12/05 02:00:02 - mmengine - INFO - Iter(train) [ 9/24]  lr: 1.0000e-03  loss: 1.5
12/05 02:00:02 - mmengine - INFO - Saving checkpoint at 12 iterations
12/05 02:00:03 - mmengine - INFO - Iter(train) [13/24]  lr: 1.0000e-03  loss: 1.4
12/05 02:00:03 - mmengine - INFO - Saving checkpoint at 16 iterations
'''


def test_log_reading():
    # the save of iteration 16 was the last line: killed during it, not a completed save
    assert completed_saves(LOG) == [12]
    assert completed_saves(LOG + 'Saving checkpoint at 20 iterations\n') == [12, 16]
    assert resumed_at(LOG) == 8 and resumed_at('no resumption') == 0


def test_checkpoint_folder(tmp_path):
    state = {'a': torch.ones(2), 'b': torch.zeros(3)}
    for n in (4, 8):
        torch.save({'state_dict': state}, tmp_path / f'iter_{n}.pth')
    torch.save({'state_dict': dict(state, a=torch.tensor([1., float('nan')]))},
               tmp_path / 'iter_12.pth')
    (tmp_path / '.iter_16.pth.tmp-1-ab.pth').write_bytes(b'')  # an interrupted save
    (tmp_path / 'iter_16.pth').write_bytes((tmp_path / 'iter_8.pth').read_bytes()[:100])
    found = checkpoints(str(tmp_path))
    assert sorted(found) == [4, 8, 12, 16] and checkpoints(str(tmp_path / 'none')) == {}
    assert [loads(found[n]) for n in (4, 16)] == [True, False]
    assert finite(found[8]) and not finite(found[12])
    assert same_weights(found[4], found[8]) and not same_weights(found[4], found[12])


def result(rc=1, last='', peak_mib=100, killed=None):
    return dict(rc=rc, last=last, peak_mib=peak_mib, killed=killed, seconds=5.0)


def test_judge():
    bad = '/data/JPEGImages/2007_000000.jpg'
    error = 'BadSampleError: truncated image /data/JPEGImages/2007_000000.jpg'
    assert judge('truncated JPEG', 'train.py', result(last=error), 'truncat', None, bad)['ok']
    for r in (result(rc=0, last=error), result(last='BadSampleError: truncated image'),
              result(last='File "x.py", line 3, in truncated'), result(rc=-9, last=error)):
        row = judge('truncated JPEG', 'train.py', r, 'truncat', None, bad)
        assert not row['ok'] and row['last'].startswith('unexpected: ')
    row = judge('zip bomb', 'test.py', result(last='bomb', peak_mib=3000), 'bomb')
    assert not row['ok'] and row['last'] == 'peak 3000 MiB bomb'
    row = judge('x', 'train.py', result(rc=-9, killed='timeout'))
    assert not row['ok'] and row['last'].startswith('TIMEOUT unexpected:')
    assert judge('x', 'train.py', result(rc=0, last='done'))['expected'] == 'success'
    # check_dataset lists every bad file: the line naming it is judged, not the last one
    row = judge('x', 'check_dataset.py', result(last='3 bad files'), 'corrupt', 'corrupt: ' + bad,
                bad)
    assert row['ok'] and row['last'] == 'corrupt: ' + bad


def test_context(tmp_path, repo_root, monkeypatch):
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    monkeypatch.setenv('RANK', '3')
    ctx = Context(str(tmp_path), ['check_dataset.py'])
    assert ctx.root == repo_root and osp.isfile(ctx.config)
    assert 'RANK' not in ctx.env and 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD' not in ctx.env
    assert ctx.env['OMP_NUM_THREADS'] == '1'
    cmd = ctx.train_cmd('w', 'd', 'x=1', iters=4, resume=True)
    assert cmd[:3] == [sys.executable, osp.join(repo_root, 'tools', 'train.py'), ctx.config]
    assert cmd[3:7] == ['--work-dir', 'w', '--resume', '--cfg-options']
    assert 'train_dataloader.dataset.data_root=d' in cmd and 'train_cfg.max_iters=4' in cmd
    assert f'default_hooks.checkpoint.max_keep_ckpts={KEEP}' in cmd and cmd[-1] == 'x=1'
    with pytest.raises(FaultInjectionError, match='source checkout: no tools/train.py in'):
        Context(str(tmp_path), [], root=str(tmp_path))


# ------------------------------------------------------------------------ the run, the report
@pytest.fixture
def stand_ins(monkeypatch):
    """The cases, the toy data and the start-up timing of fault_injection replaced by stand-ins
    that record their calls; returns the calls."""
    calls = []

    def row(fault, ok=True, **extra):
        return dict(
            dict(
                fault=fault,
                tool='train.py',
                expected='same weights',
                ok=ok,
                rc=0,
                seconds=1.0,
                peak_mib=200,
                last='fine'), **extra)

    def toy_data(cmd, **kwargs):
        calls.append(('toy data', cmd[1].endswith('make_toy_voc.py'), kwargs['cwd']))
        return API.subprocess.CompletedProcess(cmd, 0, stderr='')

    monkeypatch.setattr(API.subprocess, 'run', toy_data)
    monkeypatch.setattr(API.Context, 'run', lambda self, cmd, log, **kw: dict(seconds=4.5))
    monkeypatch.setattr(
        API, 'kill_trial', lambda i, rng, ctx, mode: calls.append(
            ('kill', i, mode)) or row(f'kill {i}', ok=i != 1, lost=int(i == 1)))
    monkeypatch.setattr(
        API, 'checkpoint_cases', lambda ctx, only: calls.append(
            ('checkpoint', only)) or [row('zip bomb', last='x|' * 60)])
    monkeypatch.setattr(API, 'data_cases', lambda ctx, only: calls.append(
        ('data', ctx.data_tools)) or [])
    monkeypatch.setattr(API, 'divergence_cases', lambda ctx: calls.append(('divergence', )) or [])
    monkeypatch.setattr(API, 'dist_case', lambda ctx, fault: calls.append(
        ('dist', fault)) or row(fault))
    for kind in ('signal', 'workdir', 'report', 'input'):
        monkeypatch.setattr(
            API, f'{kind}_cases', lambda ctx, only, kind=kind: calls.append((kind, only)) or [])
    return calls


def test_fault_injection_adds_up(tmp_path, repo_root, stand_ins):
    report = fault_injection(kills=3, work_dir=str(tmp_path / 'work'))
    assert stand_ins == [('toy data', True, repo_root), ('kill', 0, None), ('kill', 1, None),
                         ('kill', 2, None), ('checkpoint', None),
                         ('data', ['check_dataset.py', 'test.py', 'train.py']), ('divergence', ),
                         ('signal', None), ('workdir', None), ('report', None), ('input', None)]
    assert list(
        report.tables) == ['kills (SIGKILL, then --resume until done)', 'hostile checkpoints']
    assert len(report.rows) == 4 and not report.ok
    assert report.summary.startswith('faults tried 4, survived 3, data lost 1 (')
    assert report.summary.endswith('a tool takes 4.5 s to start: train.py --help)')
    assert report.to_dict() == dict(summary=report.summary, tables=report.tables)
    lines = report.markdown().splitlines()
    assert lines[:5] == [
        '', 'kills (SIGKILL, then --resume until done)', '',
        '| fault | tool | expected | outcome | exit | time to error s | peak RSS MiB | '
        'last message |', '|---|---|---|---|---|---|---|---|'
    ]
    assert lines[6] == '| kill 1 | train.py | same weights | FAIL | 0 | 1.0 | 200 | fine |'
    assert lines[-1].endswith('| ' + 'x/' * 48 + 'x... |')  # '|' escaped, 100 characters
    assert osp.isdir(tmp_path / 'work')  # kept


def test_quick_run_and_its_folder(tmp_path, monkeypatch, stand_ins):
    monkeypatch.setattr(API.tempfile, 'tempdir', str(tmp_path))
    report = fault_injection(quick=True, with_dist=True)
    quick = [
        'kills', 'code-running pickle', 'truncated JPEG', 'divergence',
        'SIGTERM after iteration 13', 'two runs in one work dir', 'binary last_checkpoint',
        'EXIF 6, label on stored pixels', "iou_metrics=['mDice']",
        'infer.py --out = the input folder', 'dist'
    ]
    assert stand_ins[1:] == [('kill', 0, 'save'), ('checkpoint', quick),
                             ('data', ['check_dataset.py']), ('divergence', ), ('signal', quick),
                             ('workdir', quick), ('report', quick), ('input', quick),
                             ('dist', 'frozen rank'), ('dist', 'killed launcher')]
    assert report.ok and report.summary.startswith('faults tried 4, survived 4, data lost 0')
    assert os.listdir(tmp_path) == []  # the temporary folder is removed
    stand_ins.clear()
    fault_injection(only=['zip bomb', 'dist'])
    assert [c[0] for c in stand_ins] == [
        'toy data', 'checkpoint', 'data', 'signal', 'workdir', 'report', 'input', 'dist', 'dist'
    ]


# ----------------------------------------------------------------------------------- the tool
@pytest.fixture(scope='module')
def tool(load_tool):
    return load_tool('fault_injection')


def test_tool_options(tool, capsys):
    with pytest.raises(SystemExit) as done:
        tool.main(['--help'])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert all(
        opt in out for opt in ('--kills', '--seed', '--quick', '--only', '--json', '--with-dist',
                               '--work-dir'))


def test_tool_prints_and_writes_the_report(tool, tmp_path, monkeypatch, capsys):
    rows = [
        dict(fault='f', tool='t', expected='e', ok=False, rc=1, seconds=2, peak_mib=3, last='l')
    ]
    report, calls = FaultReport({'kind': rows}, 'faults tried 1, survived 0, data lost 0'), []
    monkeypatch.setattr(tool, 'fault_injection', lambda **kw: calls.append(kw) or report)
    out_json = tmp_path / 'report.json'
    argv = ['--kills', '2', '--seed', '5', '--with-dist', '--only', 'kills', 'zip bomb']
    assert tool.main(argv + ['--work-dir', 'w', '--json', str(out_json)]) == 1  # a FAIL
    assert calls == [
        dict(
            kills=2, seed=5, quick=False, with_dist=True, only=['kills', 'zip bomb'], work_dir='w')
    ]
    assert capsys.readouterr().out == report.markdown() + '\n\n' + report.summary + '\n'
    assert json.loads(out_json.read_text()) == report.to_dict()
    rows[0]['ok'] = True
    assert tool.main(['--quick']) == 0

    def fails(**kwargs):
        raise FaultInjectionError('the reference run failed:\nTraceback ...')

    monkeypatch.setattr(tool, 'fault_injection', fails)
    with pytest.raises(SystemExit, match='^the reference run failed:'):
        tool.main([])
