"""Segment images with a trained model: label PNGs and colour overlays (``tools/infer.py``)."""
import os
import os.path as osp
from typing import List, Optional, Tuple

import mmcv
import numpy as np
import torch
from mmengine.structures import PixelData
from PIL import Image

from ..datasets.file_checks import MAX_PIXELS, inspect_file
from ..datasets.missing_files import file_problem
from ..datasets.transforms import BadSampleError
from ..utils.checkpoint_path import require_checkpoint_file
from ..utils.checkpoint_safety import install_safe_checkpoint_loaders
from ..utils.config_vars import load_config
from ..utils.inference_options import set_inference_options
from ..utils.label_png import save_label_png

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp')
LABEL_SUFFIX, OVERLAY_SUFFIX = '.png', '_overlay.png'  # after the image's whole file name


class OutputFolderError(ValueError):
    """The output folder is the input folder, inside it, or not a folder."""


class OutputExistsError(FileExistsError):
    """Outputs of this run exist already (``overwrite=True``, ``--overwrite``, replaces them)."""


def list_images(path: str) -> List[str]:
    """``path`` if it is a file, else the images (:data:`IMAGE_EXTS`) in the folder."""
    if osp.isfile(path):
        return [path]
    if osp.isdir(path):
        files = sorted(
            osp.join(path, f) for f in os.listdir(path) if f.lower().endswith(IMAGE_EXTS))
        if files:
            return files
        raise FileNotFoundError(f'no images ({", ".join(IMAGE_EXTS)}) in {path}')
    raise FileNotFoundError(f'{path} is neither an image file nor a folder ({file_problem(path)})')


def output_names(path: str) -> Tuple[str, str]:
    """The label PNG and overlay names of image ``path``: its whole file name, extension
    included, then :data:`LABEL_SUFFIX` or :data:`OVERLAY_SUFFIX` (``a.jpg`` -> ``a.jpg.png``,
    ``a.jpg_overlay.png``): images of one folder never share an output, and a label PNG
    never has an overlay's name (the image's name would have to end in ``_overlay``)."""
    name = osp.basename(path)
    return name + LABEL_SUFFIX, name + OVERLAY_SUFFIX


def check_outputs(paths: List[str],
                  images: str,
                  out: str,
                  overwrite: bool = False) -> List[Tuple[str, str]]:
    """The ``(label PNG, overlay)`` paths under ``out`` of the images ``paths`` (listed from
    ``images``). Raise :class:`OutputFolderError` if ``out`` is the input folder (``images``,
    or the folder holding the image ``images``), inside the input folder ``images``, or a
    file; :class:`OutputExistsError` naming the first existing outputs unless ``overwrite``."""
    is_folder = osp.isdir(images)
    folder = osp.realpath(images if is_folder else osp.dirname(images) or '.')
    target = osp.realpath(out)
    where = None
    if target == folder:
        where = 'the input folder' if is_folder else 'the folder of the input image'
    elif is_folder and osp.commonpath([target, folder]) == folder:
        where = 'inside the input folder'
    if where:
        raise OutputFolderError(
            f'the output folder {out} is {where} {images}: choose an --out outside it, so '
            'that no image is replaced and no output is read as an image')
    if osp.exists(out) and not osp.isdir(out):
        raise OutputFolderError(f'the output folder {out} is a file, not a folder')
    outputs = [tuple(osp.join(out, name) for name in output_names(p)) for p in paths]
    existing = [p for pair in outputs for p in pair if osp.lexists(p)]
    if existing and not overwrite:
        shown = ', '.join(
            existing[:3]) + (f' (and {len(existing) - 3} more)' if len(existing) > 3 else '')
        raise OutputExistsError(
            f'{len(existing)} output file(s) of this run exist already: {shown}; pass '
            '--overwrite (overwrite=True) to replace them, or choose another --out')
    return outputs


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


def infer(config: str,
          checkpoint: str,
          images: str,
          out: str,
          gt_dir: Optional[str] = None,
          device: Optional[str] = None,
          opacity: float = 0.6,
          with_labels: bool = False,
          precision: Optional[str] = None,
          channels_last: bool = False,
          overwrite: bool = False) -> List[str]:
    """Segment ``images`` (a file, or every .jpg/.jpeg/.png/.bmp in a folder) with ``checkpoint``
    through mmseg's inference API (``init_model``/``inference_model``) and its
    ``SegLocalVisualizer``; class names and colours come from the checkpoint's ``dataset_meta``.

    For each image ``<name>.<ext>`` it writes ``out/<name>.<ext>.png``, the predicted labels
    as a palette PNG in the VOC colours (values are class indices), and
    ``out/<name>.<ext>_overlay.png``, image | prediction, or image | ground truth | prediction
    when ``gt_dir`` holds a label PNG ``<name>.png`` for it (:func:`output_names`: ``a.jpg``
    and ``a.png`` of one folder get outputs of their own). ``out`` may not be the input folder
    or inside it, and existing outputs are replaced only with ``overwrite``
    (:func:`check_outputs`: nothing is written otherwise). Every image's header is checked
    before the model is built (no truncated file or decompression bomb is decoded). Returns
    the label PNGs written, in the images' order.
    """
    from mmseg.apis import inference_model, init_model
    from mmseg.visualization import SegLocalVisualizer
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file {config} does not exist')
    require_checkpoint_file(checkpoint, 'checkpoint file')
    paths = list_images(images)
    outputs = check_outputs(paths, images, out, overwrite)
    install_safe_checkpoint_loaders()
    cfg = set_inference_options(load_config(config), precision, channels_last)
    max_pixels = _max_pixels(cfg)
    for path in paths:  # every header before decoding any: no bomb, no truncated file
        check_image(path, max_pixels)
    os.makedirs(out, exist_ok=True)
    device = device or ('cuda:0' if torch.cuda.is_available() else 'cpu')
    model = init_model(cfg, checkpoint, device=device)
    visualizer = SegLocalVisualizer(alpha=opacity)
    visualizer.dataset_meta = dict(
        classes=model.dataset_meta['classes'], palette=model.dataset_meta['palette'])
    written = []
    for path, (label_file, overlay_file) in zip(paths, outputs):
        name = osp.splitext(osp.basename(path))[0]
        result = inference_model(model, path)
        pred = result.pred_sem_seg.data[0].cpu().numpy().astype(np.uint8)
        save_label_png(pred, label_file)
        written.append(label_file)

        image = mmcv.imread(path, channel_order='rgb')
        gt_path = osp.join(gt_dir, name + '.png') if gt_dir else None
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
                with_labels=with_labels)
            panels.append(visualizer.get_image())
        panels = np.concatenate(panels, axis=1)
        mmcv.imwrite(mmcv.rgb2bgr(panels), overlay_file)
    return written
