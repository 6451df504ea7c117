"""Segment images with a trained model: colour overlays and label PNGs.

    python tools/infer.py CONFIG CHECKPOINT IMAGE_OR_DIR --out DIR [--gt-dir DIR] [--device cpu]
        [--precision fp32|fp16|bf16] [--channels-last] [--overwrite]

For each image ``<name>.<ext>`` (a file, or every .jpg/.jpeg/.png/.bmp in a folder) it writes
  DIR/<name>.<ext>.png          the predicted labels, a palette PNG in the VOC colours (as
                                VOC's SegmentationClass: values are class indices)
  DIR/<name>.<ext>_overlay.png  image | prediction overlay, or image | ground truth |
                                prediction when --gt-dir holds a label PNG <name>.png for it
(:func:`fcn_plugin.apis.infer`). Class names and colours come from the checkpoint. DIR may not
be the input folder or inside it; existing outputs are replaced only with --overwrite.
"""
import argparse
import sys

from fcn_plugin.apis import infer
from fcn_plugin.utils.inference_options import add_inference_args
from fcn_plugin.utils.tool_errors import run_tool


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Colour overlays and label PNGs of images')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('images', help='an image file or a folder of images')
    parser.add_argument(
        '--out', required=True, help='output folder (not the input folder, nor inside it)')
    parser.add_argument(
        '--gt-dir',
        help='folder of ground-truth label PNGs <name>.png (the image name without its '
        'extension); adds a ground-truth panel to the overlays')
    parser.add_argument('--device', default=None, help='default: cuda:0 if there is one, else cpu')
    parser.add_argument('--opacity', type=float, default=0.6, help='overlay opacity, (0, 1]')
    parser.add_argument('--with-labels', action='store_true', help='write class names')
    parser.add_argument(
        '--overwrite', action='store_true', help='replace outputs that exist already')
    add_inference_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    written = infer(
        args.config,
        args.checkpoint,
        args.images,
        args.out,
        gt_dir=args.gt_dir,
        device=args.device,
        opacity=args.opacity,
        with_labels=args.with_labels,
        precision=args.precision,
        channels_last=args.channels_last,
        overwrite=args.overwrite)
    print(f'{len(written)} image(s): label PNGs <name>.<ext>.png and overlays '
          f'<name>.<ext>_overlay.png in {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main, 'tools/infer.py'))
