"""fcn_plugin.apis.log_curves: a work dir's scalars.json logs become the series of each key and
a PNG of loss and mIoU; tools/analyze_logs.py, its command line."""
import json
import os
import os.path as osp

import pytest

from fcn_plugin.apis.log_curves import analyze_logs, find_scalar_files, load_scalars

PNG = b'\x89PNG\r\n\x1a\n'


def write_run(work_dir, timestamp, lines):
    path = osp.join(work_dir, timestamp, 'vis_data')
    os.makedirs(path)
    with open(osp.join(path, 'scalars.json'), 'w') as f:
        for line in lines:
            f.write(json.dumps(line) + '\n')


@pytest.fixture(scope='module')
def work(tmp_path_factory):
    """A work dir of two runs: iters 1-4 with validation at 2 (logged by iteration) and 4
    (logged by epoch: step 1); the resumed run continues at iter 5, with a garbled line."""
    work = str(tmp_path_factory.mktemp('logs') / 'work')
    write_run(work, '20240101_000000', [
        dict(lr=0.01, loss=3.0, iter=1, step=1),
        dict(lr=0.01, loss=2.5, iter=2, step=2),
        dict(aAcc=50.0, mIoU=10.0, mAcc=20.0, step=2),
        dict(loss=2.0, iter=3, step=3),
        dict(loss=1.5, iter=4, step=4),
        dict(aAcc=60.0, mIoU=20.0, mAcc=30.0, step=1)
    ])
    write_run(work, '20240101_010000', [dict(loss=1.0, iter=5, step=5)])
    with open(osp.join(work, '20240101_010000', 'vis_data', 'scalars.json'), 'a') as f:
        f.write('{not json\n')
    return work


def test_series_over_iterations_across_runs(work, capsys):
    series = load_scalars(find_scalar_files(work))
    assert list(series['loss'].items()) == [(1, 3.0), (2, 2.5), (3, 2.0), (4, 1.5), (5, 1.0)]
    assert list(series['mIoU'].items()) == [(2, 10.0), (4, 20.0)]
    assert list(series['lr'].items()) == [(1, 0.01), (2, 0.01)]
    assert 'scalars.json:2 is not JSON' in capsys.readouterr().err  # skipped with a warning
    # one run only; a scalars.json file as the work dir
    one = find_scalar_files(work, '20240101_010000')
    assert load_scalars(one)['loss'] == {5: 1.0}
    assert find_scalar_files(one[0]) == one


def test_analyze_logs_plots_and_summarizes(work, tmp_path):
    out = str(tmp_path / 'plot.png')
    result = analyze_logs(work, out, keys=['loss', 'mIoU', 'lost'], title='t')
    assert result.out == out and result.drawn == ['loss', 'mIoU']
    assert list(result.series['loss'].values()) == [3.0, 2.5, 2.0, 1.5, 1.0]
    with open(out, 'rb') as f:
        assert f.read(8) == PNG
    assert result.summary() == [
        'loss: 5 points, last 1 at iter 5',
        'mIoU: 2 points, last 20 at iter 4, best 20 at iter 4',
    ]
    # the default output is curves.png in the work dir (beside a scalars.json given instead)
    log = find_scalar_files(work, '20240101_000000')[0]
    assert analyze_logs(log, keys=['mAcc']).out == osp.join(osp.dirname(log), 'curves.png')
    assert open(osp.join(osp.dirname(log), 'curves.png'), 'rb').read(8) == PNG


def test_errors_name_the_problem(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match='missing'):
        analyze_logs(str(tmp_path / 'missing'))
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match='scalars.json'):
        analyze_logs(str(empty))
    write_run(str(tmp_path / 'w'), '20240101_000000', [dict(lr=0.1, step=1)])
    with pytest.raises(ValueError, match=r"available keys: \['lr'\]"):
        analyze_logs(str(tmp_path / 'w'), str(tmp_path / 'x.png'))
    assert "warning: no values for ['loss', 'mIoU']" in capsys.readouterr().err
    assert not (tmp_path / 'x.png').exists()


# ------------------------------------------------------------------------ tools/analyze_logs.py
def test_cli(work, tmp_path, capsys, load_tool):
    tool = load_tool('analyze_logs')
    out = str(tmp_path / 'plot.png')
    assert tool.main(
        [work, '--out', out, '--keys', 'loss', 'mAcc', '--run', '20240101_000000', '--title',
         'x']) == 0
    assert capsys.readouterr().out.splitlines() == [
        'loss: 4 points, last 1.5 at iter 4',
        'mAcc: 2 points, last 30 at iter 4, best 30 at iter 4',
        f'plot written to {out}',
    ]
    with open(out, 'rb') as f:
        assert f.read(8) == PNG
    # errors: exit status 1 and the problem on stderr
    assert tool.main([str(tmp_path / 'missing')]) == 1
    err = capsys.readouterr().err
    assert err.startswith('tools/analyze_logs.py: ') and 'missing' in err
    assert tool.main([work, '--out', out, '--keys', 'nothing']) == 1
    assert 'available keys' in capsys.readouterr().err
