"""tools/analyze_logs.py: a work dir's scalars.json logs become a PNG of loss and mIoU."""
import json
import os
import os.path as osp


def write_run(work_dir, timestamp, lines):
    path = osp.join(work_dir, timestamp, 'vis_data')
    os.makedirs(path)
    with open(osp.join(path, 'scalars.json'), 'w') as f:
        for line in lines:
            f.write(json.dumps(line) + '\n')


def test_loss_and_miou_over_iterations(tmp_path, load_tool):
    tool = load_tool('analyze_logs')
    work = str(tmp_path / 'work')
    # first run: iters 1-4, validation at 2 (logged by iteration) and 4 (logged by epoch: 1)
    write_run(work, '20240101_000000', [
        dict(lr=0.01, loss=3.0, iter=1, step=1),
        dict(lr=0.01, loss=2.5, iter=2, step=2),
        dict(aAcc=50.0, mIoU=10.0, mAcc=20.0, step=2),
        dict(loss=2.0, iter=3, step=3),
        dict(loss=1.5, iter=4, step=4),
        dict(aAcc=60.0, mIoU=20.0, mAcc=30.0, step=1)
    ])
    # resumed run continues at iter 5; a garbled line is skipped with a warning
    write_run(work, '20240101_010000', [dict(loss=1.0, iter=5, step=5)])
    with open(osp.join(work, '20240101_010000', 'vis_data', 'scalars.json'), 'a') as f:
        f.write('{not json\n')
    series = tool.load_scalars(tool.find_scalar_files(work))
    assert list(series['loss'].items()) == [(1, 3.0), (2, 2.5), (3, 2.0), (4, 1.5), (5, 1.0)]
    assert list(series['mIoU'].items()) == [(2, 10.0), (4, 20.0)]

    out = str(tmp_path / 'plot.png')
    assert tool.main([work, '--out', out]) == 0
    with open(out, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    # one run only
    assert tool.load_scalars(tool.find_scalar_files(work, '20240101_010000'))['loss'] == {5: 1.0}


def test_errors_name_the_problem(tmp_path, capsys, load_tool):
    tool = load_tool('analyze_logs')
    assert tool.main([str(tmp_path / 'missing')]) == 1
    assert 'missing' in capsys.readouterr().err
    empty = tmp_path / 'empty'
    empty.mkdir()
    assert tool.main([str(empty)]) == 1
    assert 'scalars.json' in capsys.readouterr().err
    write_run(str(tmp_path / 'w'), '20240101_000000', [dict(lr=0.1, step=1)])
    assert tool.main([str(tmp_path / 'w'), '--out', str(tmp_path / 'x.png')]) == 1
    assert 'available keys' in capsys.readouterr().err
