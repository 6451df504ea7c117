"""The parts of fault_injection's signal and file cases that can be wrong without a real
training run (the cases themselves are real runs of the tools: tools/fault_injection.py): the
signals a run sends and to whom, the stop message read back, the injected write failures, and
the EXIF-tagged copy of the toy data."""
import errno
import os
import os.path as osp
import signal
import subprocess
import sys

import mmcv
import numpy as np
import pytest
from PIL import Image

from fcn_plugin.apis.fault_files import shim_env, tagged_copy
from fcn_plugin.apis.fault_runs import Context
from fcn_plugin.apis.fault_signals import STOPPED, continuing, logged_iteration
from fcn_plugin.apis.faults import run

CHILD = '''
import os, signal, sys, time
got = []
def handler(signum, frame):
    got.append(signum)
    print(signal.Signals(signum).name, os.getpgid(0) == os.getpid(), flush=True)
for s in (signal.SIGTERM, signal.SIGINT):
    signal.signal(s, handler)
print('ready', flush=True)
while len(got) < 2:
    time.sleep(0.01)
sys.exit(7)
'''


def test_run_sends_signals_in_order_to_the_process_or_its_group(tmp_path):
    r = run([sys.executable, '-c', CHILD],
            str(tmp_path / 'log'),
            dict(os.environ),
            timeout=60,
            signals=[(lambda tail: 'ready' in tail.read(), signal.SIGTERM, False),
                     (lambda tail: 'SIGTERM' in tail.read(), signal.SIGINT, True)])
    # its own session (group leader), so a group signal reaches it and not this process
    assert r['out'].split('\n')[1:3] == ['SIGTERM True', 'SIGINT True']
    assert r['rc'] == 7 and r['killed'] is None and len(r['sent']) == 2
    assert r['sent'][0] <= r['sent'][1]


def test_the_stop_message_is_read_back():
    line = ('tools/train.py: error: TrainingInterrupted: SIGTERM received: training stopped '
            'after iteration 14; checkpoint /w/iter_14.pth saved. Continue with: python '
            "tools/train.py c.py --work-dir '/w x' --resume (traceback in /w/1/1.log)")
    stop = STOPPED.search('earlier output\n' + line + '\n')
    assert stop.groups() == ('14', '/w/iter_14.pth',
                             "python tools/train.py c.py --work-dir '/w x' --resume")
    words, env = continuing(stop.group(3), {'A': '1'})
    assert words == [sys.executable, 'tools/train.py', 'c.py', '--work-dir', '/w x', '--resume']
    assert env == {'A': '1'}
    words, env = continuing('bash tools/dist_train.sh c.py 2 --resume', {})
    assert words[:4] == ['bash', 'tools/dist_train.sh', 'c.py', '2']
    assert env['PYTHON'] == sys.executable and int(env['PORT']) > 0
    assert logged_iteration(
        'Iter(train) [ 9/24]  lr...\nIter(train) [10/24]\nIter(val) [2/2]') == 10


def test_the_shim_fails_writes_as_a_full_disk_and_a_read_only_folder(tmp_path):
    read_only = tmp_path / 'ro'
    read_only.mkdir()
    (read_only / 'old.txt').write_text('kept')
    code = f'''
import errno, os
def errno_of(f):
    try:
        f()
    except OSError as e:
        return e.errno
print(errno_of(lambda: open({str(tmp_path / 'vis' / 'scalars.json')!r}, 'a')),
      errno_of(lambda: open({str(tmp_path / 'other.json')!r}, 'w').close()),
      errno_of(lambda: os.makedirs({str(read_only / 'a' / 'b')!r})),
      errno_of(lambda: os.open({str(read_only / 'n')!r}, os.O_WRONLY | os.O_CREAT)),
      open({str(read_only / 'old.txt')!r}).read())
'''
    env = shim_env(
        dict(os.environ), FCN_FAULT_ENOSPC='*/vis/scalars.json', FCN_FAULT_EROFS=str(read_only))
    out = subprocess.run([sys.executable, '-c', code],
                         env=env,
                         capture_output=True,
                         text=True,
                         check=True).stdout.split()
    assert out == [str(errno.ENOSPC), 'None', str(errno.EROFS), str(errno.EROFS), 'kept']
    assert os.listdir(read_only) == ['old.txt'] and osp.exists(tmp_path / 'other.json')


@pytest.mark.parametrize('orientation,upright', [(6, True), (6, False), (3, True)])
def test_tagged_copy(tmp_path, make_voc, repo_root, orientation, upright):
    """The tagged image, loaded as the pipelines load it (the tag applied), is the original
    when its label was drawn upright; stored as the original otherwise."""
    ctx = Context(str(tmp_path), [], repo_root)
    make_voc(ctx.data, n_train=3, n_val=1, size=(20, 28))
    original = {
        n: mmcv.imread(osp.join(ctx.data, 'JPEGImages', n + '.jpg'), channel_order='rgb')
        for n in ('2007_000000', '2007_000001', '2007_000002')
    }
    data, image = tagged_copy(ctx, 'tagged', orientation, upright)
    name = osp.basename(image)[:-4]
    with open(osp.join(data, 'ImageSets', 'Segmentation', 'val.txt')) as f:
        assert f.read().split()[0] == name  # listed first, in both splits
    assert Image.open(image).getexif()[274] == orientation
    loaded = mmcv.imread(image, channel_order='rgb')  # the tag applied
    stored = np.array(Image.open(image).convert('RGB'))  # the tag ignored
    compared = loaded if upright else stored
    assert compared.shape == original[name].shape
    assert np.abs(compared.astype(int) - original[name]).mean() < 8  # JPEG re-encoded
