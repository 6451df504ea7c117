"""A checkpoint path that is a folder is said to be one, with the checkpoints it holds."""
import os

import pytest

from fcn_plugin.utils.checkpoint_path import checkpoint_path_problem, require_checkpoint_file


def test_a_work_dir_lists_its_checkpoints_the_pointed_one_first(tmp_path):
    for i, name in enumerate(('iter_2.pth', 'iter_4.pth', 'iter_6.pth')):
        (tmp_path / name).write_bytes(b'x')
        os.utime(tmp_path / name, (i, i))  # iter_6 newest
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))
    (tmp_path / 'notes.txt').write_text('not a checkpoint')
    problem = checkpoint_path_problem(str(tmp_path))
    listed = problem.split(': ', 1)[1].split(': ', 1)[1].split(', ')
    assert 'is a folder' in problem and 'last_checkpoint' in problem
    assert listed == [str(tmp_path / n) for n in ('iter_4.pth', 'iter_6.pth', 'iter_2.pth')]
    with pytest.raises(IsADirectoryError, match='is a folder'):
        require_checkpoint_file(str(tmp_path))
    with pytest.raises(ValueError, match='is a folder'):  # the caller's class kept
        require_checkpoint_file(str(tmp_path), error=ValueError)


def test_an_empty_folder_a_missing_path_and_a_file(tmp_path):
    assert 'holding no .pth file' in checkpoint_path_problem(str(tmp_path))
    with pytest.raises(FileNotFoundError, match='missing.pth does not exist'):
        require_checkpoint_file(str(tmp_path / 'missing.pth'))
    (tmp_path / 'a.pth').write_bytes(b'x')
    assert checkpoint_path_problem(str(tmp_path / 'a.pth')) is None
    for i in range(7):
        (tmp_path / f'b{i}.pth').write_bytes(b'x')
    assert checkpoint_path_problem(str(tmp_path)).endswith('(and 3 more)')
