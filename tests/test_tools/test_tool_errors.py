"""Errors a user can cause end the tools with one short final line on stderr,
``tools/<tool>.py: error: <ErrorClass>: <message naming the file>``, exit status 1, after the
runner's config and environment dump; the traceback goes to the log file. The tools' main runs
in this process, as their command line runs it."""
import os
import uuid

import pytest

from fcn_plugin.datasets.transforms import BadSampleError
from fcn_plugin.utils.tool_errors import is_user_error, run_tool, user_message


def truncate(path, keep=0.3):
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:int(len(data) * keep)])


def tiny_config(tmp_path, tiny_cfg, root):
    """The tiny test config on FCNVOCDataset (our configs' dataset: a missing folder is a
    FileNotFoundError naming it), written to a file."""
    cfg = tiny_cfg(root, tmp_path / 'work', max_iters=2)
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.dataset.dataset.type = 'FCNVOCDataset'
    path = tmp_path / 'tiny.py'
    cfg.dump(str(path))
    return str(path)


@pytest.fixture
def run(load_tool, capsys, one_thread):
    """``run(tool, *argv)``: ``tools/<tool>.py``'s main under run_tool, as ``python
    tools/<tool>.py ARGV`` runs it; (exit status, stderr)."""

    def call(tool, *argv):
        options = ['--cfg-options', f'experiment_name=errors_{uuid.uuid4().hex[:8]}']
        with pytest.raises(SystemExit) as stop:
            run_tool(load_tool(tool).main, f'tools/{tool}.py', [*map(str, argv), *options])
        return stop.value.code, capsys.readouterr().err

    return call


def test_train_names_a_truncated_image_last(tmp_path, make_voc, tiny_cfg, run):
    root = tmp_path / 'voc'
    for name in make_voc(root, n_train=2, n_val=1)['train']:  # the sampler shuffles
        truncate(root / 'JPEGImages' / f'{name}.jpg')
    code, stderr = run('train', tiny_config(tmp_path, tiny_cfg, root))
    last = stderr.strip().splitlines()[-1]
    assert code == 1, stderr[-3000:]
    assert last.startswith('tools/train.py: error: BadSampleError: bad data: sample ') and \
        f'{root / "JPEGImages"}' in last and 'truncated JPEG' in last, stderr[-3000:]
    log = last.rsplit('(traceback in ', 1)[1].rstrip(')')  # the traceback is in the log
    assert 'Traceback (most recent call last)' in open(log).read()


def test_test_names_a_missing_data_root_last(tmp_path, tiny_cfg, run):
    config = tiny_config(tmp_path, tiny_cfg, tmp_path / 'nowhere')
    checkpoint = tmp_path / 'model.pth'
    checkpoint.write_bytes(b'')  # the dataset is built (and fails) before it is loaded
    code, stderr = run('test', config, checkpoint)
    last = stderr.strip().splitlines()[-1]
    assert code == 1
    assert last.startswith('tools/test.py: error: FileNotFoundError: FCNVOCDataset: split file '
                           f'(ann_file) not found: {tmp_path / "nowhere"}'), stderr[-3000:]


def test_infer_names_a_truncated_image(tmp_path, make_voc, load_tool, capsys, repo_root):
    """tools/infer.py checks every image's header before the model is built."""
    root = tmp_path / 'voc'
    make_voc(root, n_train=2, n_val=0)
    bad = root / 'JPEGImages' / '2007_000001.jpg'
    truncate(bad)
    config = os.path.join(repo_root, 'configs', 'fcn8s_vgg16-tiny_toyvoc.py')
    infer = load_tool('infer')
    with pytest.raises(SystemExit) as stop:
        run_tool(infer.main, 'tools/infer.py',
                 [config, config,
                  str(root / 'JPEGImages'), '--out',
                  str(tmp_path / 'out')])
    assert stop.value.code == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == (f'tools/infer.py: error: BadSampleError: bad data: {bad}: truncated JPEG '
                    '(no end-of-image marker; the file is cut short): re-copy or re-download it')


def test_user_message_and_other_errors():
    worker = BadSampleError('Caught BadSampleError in DataLoader worker process 0.\nOriginal '
                            'Traceback (most recent call last):\n  File "x.py", line 1\n'
                            'fcn_plugin.datasets.transforms.BadSampleError: bad data: a.jpg: '
                            'truncated JPEG\n')
    assert user_message(worker) == 'BadSampleError: bad data: a.jpg: truncated JPEG'
    wrapped = FileNotFoundError('class `ValidatedDataset` in fcn_plugin/datasets/validated_'
                                'dataset.py: class `FCNVOCDataset` in fcn_plugin/datasets/voc.py:'
                                ' FCNVOCDataset: image folder not found: x/JPEGImages')
    assert user_message(wrapped) == ('FileNotFoundError: FCNVOCDataset: image folder not found: '
                                     'x/JPEGImages')
    assert is_user_error(worker) and is_user_error(wrapped)
    assert not is_user_error(ZeroDivisionError()) and not is_user_error(KeyError('x'))
    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
        run_tool(lambda: 1 / 0, 'tools/x.py')


def test_a_read_only_work_dir_is_one_line(tmp_path, make_voc, tiny_cfg, run, monkeypatch):
    """The run cannot create its work dir (a read-only file system; tests run as root, where
    chmod does not bite, so the refusal is injected): the last line names the folder, and no
    traceback comes before it."""
    import errno
    root = tmp_path / 'voc'
    make_voc(root, n_train=2, n_val=1)
    config = tiny_config(tmp_path, tiny_cfg, root)
    makedirs = os.makedirs

    def read_only(path, *args, **kwargs):
        if str(path).startswith(str(tmp_path / 'work')):
            raise OSError(errno.EROFS, 'Read-only file system', str(path))
        return makedirs(path, *args, **kwargs)

    monkeypatch.setattr(os, 'makedirs', read_only)
    code, stderr = run('train', config)
    assert code == 1 and 'Traceback' not in stderr, stderr[-3000:]
    assert stderr.strip().splitlines()[-1] == (
        f"tools/train.py: error: OSError: [Errno 30] Read-only file system: '{tmp_path / 'work'}'")


def test_a_config_typo_is_the_only_line(tmp_path, run, repo_root):
    """A misspelt key (here in --cfg-options) stops before anything runs: one line, no
    traceback (the message names the key and the closest known one)."""
    config = os.path.join(repo_root, 'configs', 'fcn8s_vgg16-tiny_toyvoc.py')
    code, stderr = run('train', config, '--work-dir', tmp_path / 'work', '--cfg-options',
                       'max_iter=10')
    assert code == 1 and stderr.strip().splitlines() == [
        "tools/train.py: error: ConfigError: max_iter = 10 is not a key any config of this "
        "chain or the runner reads, so it would be ignored: did you mean 'max_iters' (here set "
        "as train_cfg.max_iters)?"
    ], stderr
    assert not (tmp_path / 'work').exists()
