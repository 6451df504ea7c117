"""The one missing-file check: ``missing_files`` lists every missing image and label of a data
list; FCNVOCDataset and CustomSegDataset raise with it at build time, unless built with
``check_files=False`` (how tools/check_dataset.py lists them all)."""
import os
import os.path as osp

import numpy as np
import pytest
from mmseg.registry import DATASETS
from PIL import Image

from fcn_plugin.datasets.missing_files import describe_missing, missing_files


def test_missing_files_lists_every_missing_path_in_order(tmp_path):
    present = tmp_path / 'a.jpg'
    present.write_bytes(b'x')
    infos = [
        dict(img_path=str(present), seg_map_path=str(tmp_path / 'a.png')),
        dict(img_path=str(tmp_path / 'b.jpg'), seg_map_path=None),  # no label: not checked
        dict(img_path=str(tmp_path), seg_map_path=str(present))
    ]  # a folder is no file
    missing = missing_files(iter(infos))
    assert missing == [(0, str(tmp_path / 'a.png')), (1, str(tmp_path / 'b.jpg')),
                       (2, str(tmp_path))]
    assert missing_files(infos, ['seg_map_path']) == [(0, str(tmp_path / 'a.png'))]
    assert describe_missing(
        missing, 'train.txt',
        shown=2) == (f'3 file(s) listed by train.txt are missing: {tmp_path / "a.png"}; '
                     f'{tmp_path / "b.jpg"}; ...')


def test_voc_dataset_names_all_missing_files_or_loads_them_with_check_files_false(
        tmp_path, make_voc):
    root = tmp_path / 'voc'
    names = make_voc(root, n_train=4, n_val=1)['train']
    gone = [
        osp.join(root, 'JPEGImages', names[0] + '.jpg'),
        osp.join(root, 'SegmentationClass', names[2] + '.png')
    ]
    for path in gone:
        os.remove(path)
    cfg = dict(
        type='FCNVOCDataset',
        data_root=str(root),
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/train.txt',
        pipeline=[],
        prepare_cmd=f'make it --out {root}')
    with pytest.raises(FileNotFoundError) as info:
        DATASETS.build(cfg)
    message = str(info.value)
    assert message.startswith('FCNVOCDataset: 2 file(s) listed by ')
    assert all(path in message
               for path in gone) and message.endswith(f'Prepare it with: make it --out {root}')
    dataset = DATASETS.build(dict(cfg, check_files=False))
    assert len(dataset) == 4
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    assert missing_files(infos) == [(0, gone[0]), (2, gone[1])]
    os.remove(osp.join(root, 'ImageSets', 'Segmentation', 'train.txt'))
    with pytest.raises(FileNotFoundError, match='split file'):  # folders and splits still checked
        DATASETS.build(dict(cfg, check_files=False))


def test_custom_dataset_check_files_false_keeps_images_without_labels(tmp_path):
    root = tmp_path / 'data'
    for sub in ('images', 'labels'):
        (root / sub).mkdir(parents=True)
    for name in ('a', 'b', 'c'):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / 'images' / f'{name}.jpg')
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / 'labels' / 'b.png')
    cfg = dict(
        type='CustomSegDataset',
        data_root=str(root),
        data_prefix=dict(img_path='images', seg_map_path='labels'),
        metainfo=dict(classes=('bg', 'fg')),
        pipeline=[])
    with pytest.raises(
            FileNotFoundError,
            match=r'2 of 3 images have no label .* e\.g\. '
            r'.*labels/a\.png \(for .*images/a\.jpg'):
        DATASETS.build(cfg)
    dataset = DATASETS.build(dict(cfg, check_files=False))
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    assert [osp.basename(p) for _, p in missing_files(infos)] == ['a.png', 'c.png']


# ------------------------------------------------------------------ a split that lists nothing
@pytest.fixture
def run_tool_main(load_tool, capsys):
    """``run_tool_main(tool, *argv)``: ``tools/<tool>.py``'s main under run_tool, as its command
    line runs it; (exit status, stdout, stderr)."""
    from fcn_plugin.utils.tool_errors import run_tool

    def call(tool, *argv):
        try:
            code = run_tool(load_tool(tool).main, f'tools/{tool}.py', list(map(str, argv)))
        except SystemExit as stop:
            code = stop.code
        out = capsys.readouterr()
        return code, out.out, out.err

    return call


def test_an_empty_split_file_is_one_error_naming_it(tmp_path, make_voc, tiny_cfg, write_config,
                                                    run_tool_main, one_thread):
    from fcn_plugin.datasets.missing_files import NoSamplesError
    from fcn_plugin.utils.tool_errors import is_user_error
    root = tmp_path / 'voc'
    names = make_voc(root, n_train=2, n_val=1)['train']
    split = root / 'ImageSets/Segmentation/train.txt'
    voc = dict(
        type='FCNVOCDataset',
        data_root=str(root),
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/train.txt',
        pipeline=[])
    custom = dict(voc, type='CustomSegDataset', img_suffix='.jpg', seg_map_suffix='.png')
    split.write_text(f'\n{names[1]}\n  \n')  # blank lines are no samples
    assert len(DATASETS.build(voc)) == len(DATASETS.build(custom)) == 1
    for text in ('', '\n \n'):
        split.write_text(text)
        for cfg in (voc, custom):
            with pytest.raises(NoSamplesError, match=f'the split file {split} lists no images'):
                DATASETS.build(cfg)
    error = NoSamplesError('x')
    assert isinstance(error, FileNotFoundError) and is_user_error(error)
    # tools/check_dataset.py, also on mmseg's PascalVOCDataset (write_config's datasets): the
    # split named, exit status 1, no traceback
    code, out, err = run_tool_main('check_dataset', write_config(tmp_path / 'c.py', root),
                                   '--workers', '1')
    assert code == 1 and f'the split file {split} lists no images' in out, out + err
    assert 'Traceback' not in out + err
    # tools/train.py: one final line naming the file; the traceback goes to the log file
    cfg = tiny_cfg(root, tmp_path / 'work', max_iters=2)
    cfg.train_dataloader.dataset.dataset.type = 'FCNVOCDataset'
    cfg.dump(str(tmp_path / 'tiny.py'))
    code, out, err = run_tool_main('train', tmp_path / 'tiny.py')
    last = err.strip().splitlines()[-1]
    assert code == 1 and last.startswith('tools/train.py: error: NoSamplesError: FCNVOCDataset: '
                                         f'the split file {split} lists no images'), err[-3000:]
    assert 'Traceback' not in err and '(traceback in ' in last
