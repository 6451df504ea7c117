"""Segment images with a trained model: colour overlays and label PNGs.

    python tools/infer.py CONFIG CHECKPOINT IMAGE_OR_DIR --out DIR [--gt-dir DIR] [--device cpu]
        [--precision fp32|fp16|bf16] [--channels-last]

For each image ``<name>.<ext>`` (a file, or every .jpg/.jpeg/.png/.bmp in a folder) it writes
  DIR/<name>.png          the predicted labels, a palette PNG in the VOC colours (as VOC's
                          SegmentationClass: values are class indices)
  DIR/<name>_overlay.png  image | prediction overlay, or image | ground truth | prediction when
                          --gt-dir holds a label PNG <name>.png for it
through mmseg's inference API (``mmseg.apis.init_model`` / ``inference_model``) and its
``SegLocalVisualizer``. Class names and colours come from the checkpoint's ``dataset_meta``.
"""
import argparse
import os
import os.path as osp
import sys

import mmcv
import numpy as np
import torch
from _bootstrap import import_plugin  # first: it quiets the pkg_resources warning
from mmengine.structures import PixelData
from PIL import Image

import_plugin()

from mmseg.apis import inference_model, init_model  # noqa: E402
from mmseg.visualization import SegLocalVisualizer  # noqa: E402

from fcn_plugin.datasets.file_checks import MAX_PIXELS, inspect_file  # noqa: E402
from fcn_plugin.datasets.missing_files import file_problem  # noqa: E402
from fcn_plugin.datasets.transforms import BadSampleError  # noqa: E402
from fcn_plugin.utils.config_vars import load_config  # noqa: E402
from fcn_plugin.utils.inference_options import add_inference_args  # noqa: E402
from fcn_plugin.utils.inference_options import apply_inference_args
from fcn_plugin.utils.label_png import save_label_png  # noqa: E402
from fcn_plugin.utils.tool_errors import run_tool  # noqa: E402

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp')


def list_images(path: str) -> list:
    if osp.isfile(path):
        return [path]
    if osp.isdir(path):
        files = sorted(
            osp.join(path, f) for f in os.listdir(path) if f.lower().endswith(IMAGE_EXTS))
        if files:
            return files
        raise SystemExit(f'tools/infer.py: no images ({", ".join(IMAGE_EXTS)}) in {path}')
    raise SystemExit(f'tools/infer.py: {path} is neither an image file nor a folder '
                     f'({file_problem(path)})')


def _max_pixels(cfg) -> int:
    """The pixel limit of the test pipeline's CheckSegFiles (configs/_base_/datasets)."""
    steps = [t for t in cfg.get('test_pipeline') or [] if t.get('type') == 'CheckSegFiles']
    return steps[0].get('max_pixels', MAX_PIXELS) if steps else MAX_PIXELS


def check_image(path: str, max_pixels: int) -> None:
    """Raise BadSampleError naming ``path`` if it is truncated, corrupt or over the pixel limit
    (from its header: nothing is decoded; fcn_plugin.datasets.file_checks)."""
    problem, _ = inspect_file(path, max_pixels)
    if problem:
        raise BadSampleError(path, problem)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Colour overlays and label PNGs of images')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('images', help='an image file or a folder of images')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument(
        '--gt-dir',
        help='folder of ground-truth label PNGs <name>.png; adds a '
        'ground-truth panel to the overlays')
    parser.add_argument('--device', default='cuda:0' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--opacity', type=float, default=0.6, help='overlay opacity, (0, 1]')
    parser.add_argument('--with-labels', action='store_true', help='write class names')
    add_inference_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    for path, what in ((args.config, 'config'), (args.checkpoint, 'checkpoint')):
        if not osp.isfile(path):
            raise SystemExit(f'tools/infer.py: {what} file {path} does not exist')
    images = list_images(args.images)
    os.makedirs(args.out, exist_ok=True)
    cfg = apply_inference_args(load_config(args.config), args, 'tools/infer.py')
    max_pixels = _max_pixels(cfg)
    for path in images:  # every header before decoding any: no bomb, no truncated file
        check_image(path, max_pixels)
    model = init_model(cfg, args.checkpoint, device=args.device)
    visualizer = SegLocalVisualizer(alpha=args.opacity)
    visualizer.dataset_meta = dict(
        classes=model.dataset_meta['classes'], palette=model.dataset_meta['palette'])
    for path in images:
        name = osp.splitext(osp.basename(path))[0]
        result = inference_model(model, path)
        pred = result.pred_sem_seg.data[0].cpu().numpy().astype(np.uint8)
        save_label_png(pred, osp.join(args.out, name + '.png'))

        image = mmcv.imread(path, channel_order='rgb')
        gt_path = osp.join(args.gt_dir, name + '.png') if args.gt_dir else None
        has_gt = gt_path is not None and osp.isfile(gt_path)
        if has_gt:
            check_image(gt_path, max_pixels)
            gt = torch.from_numpy(np.array(Image.open(gt_path)).astype(np.int64))[None]
            result.gt_sem_seg = PixelData(data=gt)
        panels = [image]
        # one panel per call: the visualizer keeps the last overlay it drew as its image
        for draw_gt in ((True, False) if has_gt else (False, )):
            visualizer.add_datasample(
                name,
                image,
                result,
                draw_gt=draw_gt,
                draw_pred=not draw_gt,
                with_labels=args.with_labels)
            panels.append(visualizer.get_image())
        panels = np.concatenate(panels, axis=1)
        mmcv.imwrite(mmcv.rgb2bgr(panels), osp.join(args.out, name + '_overlay.png'))
    print(f'{len(images)} image(s): label PNGs and overlays in {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main, 'tools/infer.py'))
