"""tools/infer.py: label PNGs and overlays through mmseg's inference API."""
import os.path as osp

import numpy as np
import pytest
from PIL import Image

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'fcn8s_vgg16-tiny_toyvoc.py')


@pytest.fixture(scope='module')
def infer(load_tool):
    return load_tool('infer')


def test_infer_folder_with_ground_truth(infer, toy_and_checkpoint):
    tmp, ckpt = toy_and_checkpoint
    out = tmp / 'out'
    assert infer.main([
        CONFIG, ckpt,
        str(tmp / 'toy' / 'JPEGImages'), '--out',
        str(out), '--gt-dir',
        str(tmp / 'toy' / 'SegmentationClass'), '--device', 'cpu'
    ]) == 0
    for name in ('toy_0000', 'toy_0001', 'toy_0002'):
        image = Image.open(tmp / 'toy' / 'JPEGImages' / f'{name}.jpg')
        label = Image.open(out / f'{name}.jpg.png')
        assert label.mode == 'P' and label.size == image.size
        assert label.getpalette()[3:6] == [128, 0, 0]
        assert set(np.unique(np.array(label))) <= set(range(6))
        overlay = Image.open(out / f'{name}.jpg_overlay.png')
        # image | ground truth | prediction
        assert overlay.size == (3 * image.size[0], image.size[1])
        left = np.array(overlay.convert('RGB'))[:, :image.size[0]].astype(int)
        assert np.abs(left - np.array(image.convert('RGB'))).mean() < 3  # the image itself


def test_infer_single_image_without_gt(infer, toy_and_checkpoint):
    tmp, ckpt = toy_and_checkpoint
    img = tmp / 'toy' / 'JPEGImages' / 'toy_0001.jpg'
    assert infer.main([CONFIG, ckpt, str(img), '--out', str(tmp / 'one'), '--device', 'cpu']) == 0
    width = Image.open(img).size[0]
    assert Image.open(tmp / 'one' / 'toy_0001.jpg_overlay.png').size[0] == 2 * width


def test_infer_bad_paths(infer, toy_and_checkpoint, tmp_path):
    _, ckpt = toy_and_checkpoint
    with pytest.raises(FileNotFoundError, match='does not exist'):
        infer.main(
            [CONFIG,
             str(tmp_path / 'missing.pth'),
             str(tmp_path), '--out',
             str(tmp_path / 'o')])
    with pytest.raises(FileNotFoundError, match='no images'):
        infer.main([CONFIG, ckpt, str(tmp_path), '--out', str(tmp_path / 'o')])
    # a work dir given as the checkpoint: said to be a folder, with its checkpoints
    folder = osp.dirname(ckpt)
    with pytest.raises(IsADirectoryError, match=f'is a folder: .*{osp.basename(ckpt)}'):
        infer.main([CONFIG, folder, str(tmp_path), '--out', str(tmp_path / 'o')])


def test_infer_in_bf16_agrees_with_fp32(infer, toy_and_checkpoint):
    tmp, ckpt = toy_and_checkpoint
    images = str(tmp / 'toy' / 'JPEGImages')
    for precision in ('fp32', 'bf16'):
        assert infer.main([
            CONFIG, ckpt, images, '--out',
            str(tmp / precision), '--device', 'cpu', '--precision', precision
        ]) == 0
    for name in ('toy_0001', 'toy_0002'):
        fp32, bf16 = (np.array(Image.open(tmp / p / f'{name}.jpg.png')) for p in ('fp32', 'bf16'))
        assert fp32.shape == bf16.shape and (fp32 == bf16).mean() > 0.95


def test_infer_images_smaller_than_the_tiny_model_minimum(infer, toy_and_checkpoint):
    tmp, ckpt = toy_and_checkpoint
    small = tmp / 'small'
    small.mkdir()
    Image.fromarray(np.full((10, 12, 3), 128, np.uint8)).save(small / 'tiny.png')
    assert infer.main(
        [CONFIG, ckpt, str(small), '--out',
         str(tmp / 'small_out'), '--device', 'cpu']) == 0
    assert np.array(Image.open(tmp / 'small_out' / 'tiny.png.png')).shape == (10, 12)


def test_infer_same_stem_different_extensions_keep_both(infer, toy_and_checkpoint):
    """a.jpg and a.png of one folder: two label PNGs and two overlays, none replaced."""
    tmp, ckpt = toy_and_checkpoint
    both = tmp / 'both'
    both.mkdir()
    Image.fromarray(np.full((40, 48, 3), 30, np.uint8)).save(both / 'a.jpg')
    Image.fromarray(np.full((36, 44, 3), 200, np.uint8)).save(both / 'a.png')
    from fcn_plugin.apis import infer as api_infer
    written = api_infer(CONFIG, ckpt, str(both), str(tmp / 'both_out'), device='cpu')
    assert written == [str(tmp / 'both_out' / 'a.jpg.png'), str(tmp / 'both_out' / 'a.png.png')]
    assert sorted(p.name for p in (tmp / 'both_out').iterdir()) == [
        'a.jpg.png', 'a.jpg_overlay.png', 'a.png.png', 'a.png_overlay.png'
    ]
    assert Image.open(tmp / 'both_out' / 'a.png.png').size == (44, 36)


def test_infer_refuses_to_clobber(infer, toy_and_checkpoint, tmp_path):
    """--out = the input folder (or inside it) is refused, as are existing outputs unless
    --overwrite; nothing is written or replaced, the inputs stay as they were."""
    from fcn_plugin.apis.inference import OutputExistsError, OutputFolderError
    from fcn_plugin.utils.tool_errors import is_user_error
    _, ckpt = toy_and_checkpoint
    images = tmp_path / 'images'
    images.mkdir()
    Image.fromarray(np.full((40, 48, 3), 90, np.uint8)).save(images / 'b.png')
    before = (images / 'b.png').read_bytes()
    for out in (images, images / 'sub', images / '.' / 'sub' / '..'):
        with pytest.raises(OutputFolderError, match='input folder') as error:
            infer.main([CONFIG, ckpt, str(images), '--out', str(out), '--overwrite'])
        assert str(images) in str(error.value) and is_user_error(error.value)
    with pytest.raises(OutputFolderError, match='is the folder of the input image'):  # one image
        infer.main([CONFIG, ckpt, str(images / 'b.png'), '--out', str(images)])
    assert sorted(p.name for p in images.iterdir()) == ['b.png']
    assert (images / 'b.png').read_bytes() == before

    out = tmp_path / 'out'
    assert infer.main([CONFIG, ckpt, str(images), '--out', str(out), '--device', 'cpu']) == 0
    label = out / 'b.png.png'
    label.write_bytes(b'mine')
    with pytest.raises(OutputExistsError, match='--overwrite') as error:
        infer.main([CONFIG, ckpt, str(images), '--out', str(out), '--device', 'cpu'])
    assert str(label) in str(error.value) and is_user_error(error.value)
    assert label.read_bytes() == b'mine'
    assert infer.main(
        [CONFIG, ckpt,
         str(images), '--out',
         str(out), '--device', 'cpu', '--overwrite']) == 0
    assert Image.open(label).mode == 'P'
