"""fcn_plugin.utils.io: the one atomic write every file of the plugin and its tools goes through."""
import os

import pytest

from fcn_plugin.utils.io import atomic_write, atomic_write_text


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def test_written_file_gets_the_mode_open_would_give(tmp_path, umask_027):
    path = tmp_path / 'out.txt'
    atomic_write_text(str(path), 'x')
    assert path.read_text() == 'x'
    assert os.stat(path).st_mode & 0o777 == 0o640  # 0666 less the umask, not mkstemp's 0600


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / 'label.png'
    atomic_write_text(str(path), 'old')
    with pytest.raises(RuntimeError):
        with atomic_write(str(path)) as tmp:
            assert tmp.endswith('.png') and os.path.basename(tmp).startswith('.label.png.tmp-')
            with open(tmp, 'w') as f:
                f.write('half')
            raise RuntimeError('killed mid-write')
    assert path.read_text() == 'old'
    assert os.listdir(tmp_path) == ['label.png']
