"""tools/fault_injection.py's own parts (the experiment itself takes minutes; the README names
it): the hostile files are what they claim to be, and a run is killed, measured and reported."""
import errno
import os
import os.path as osp
import pickle
import sys
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from fcn_plugin.utils.checkpoint_safety import load_weights_only


@pytest.fixture(scope='module')
def lib(load_tool):
    return load_tool('_fault_lib')


def test_hostile_checkpoints(tmp_path, lib):
    marker = str(tmp_path / 'ran')
    lib.make_pickle_bomb(str(tmp_path / 'evil.pth'), marker)
    with pytest.raises(pickle.UnpicklingError):
        load_weights_only(str(tmp_path / 'evil.pth'))
    assert not osp.exists(marker)
    torch.load(str(tmp_path / 'evil.pth'), weights_only=False)  # what it would do unsafely
    assert osp.exists(marker)

    lib.make_zip_bomb(str(tmp_path / 'bomb.pth'), 64 << 20)
    with zipfile.ZipFile(tmp_path / 'bomb.pth') as archive:
        info = archive.getinfo('archive/data.pkl')
    assert info.file_size == 64 << 20 and info.compress_size * 500 < info.file_size


@pytest.mark.parametrize('fault', [
    'missing image', 'truncated JPEG', 'corrupt PNG', 'label out of range', 'colour label',
    'size mismatch', 'decompression-bomb PNG as .jpg', 'symlink loop'
])
def test_corrupt_sample(tmp_path, make_voc, lib, fault):
    root = str(tmp_path / 'voc')
    make_voc(root, n_train=2, n_val=1)
    bad = lib.corrupt_sample(root, fault, bomb_side=3000)
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


def test_run_kills_and_measures(tmp_path, lib):
    child = ('import time; x = bytearray(80 << 20); x[::4096] = b"1" * len(x[::4096]); '
             'print("ready", flush=True); time.sleep(60)')
    r = lib.run([sys.executable, '-c', child],
                str(tmp_path / 'log'),
                dict(os.environ),
                kill_when=lambda tail: 'ready' in tail.read())
    assert r['rc'] == -9 and r['killed'] is not None and r['killed'] < 30
    assert r['peak_mib'] >= 80
    r = lib.run([sys.executable, '-c', 'import sys; sys.exit("bad thing: named.file")'],
                str(tmp_path / 'log2'), dict(os.environ))
    assert r['rc'] == 1 and r['last'] == 'bad thing: named.file' and r['killed'] is None


def test_options(load_tool, repo_root, monkeypatch, capsys):
    monkeypatch.syspath_prepend(osp.join(repo_root, 'tools'))  # as for `python tools/x.py`
    tool = load_tool('fault_injection')
    with pytest.raises(SystemExit) as done:
        tool.main(['--help'])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert all(opt in out for opt in ('--kills', '--seed', '--quick', '--only', '--json'))
