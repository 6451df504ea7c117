"""Convert masks (0/255, grey levels, colours) to index-label PNGs for training.

    python tools/dataset_converters/masks2labels.py SRC DST [options]

A label for training holds one class index per pixel: ``0..K-1``, and 255 for void (ignored by
the loss and the metrics). Masks as most tools save them are not that: a binary mask saved as
0/255 would make every foreground pixel void, and the model would learn nothing but background
(loss ~0, mIoU 100). This writes index labels (VOC palette PNGs, atomically) and reports the
values it found per file and in total, and what each became.

SRC is a mask file or a folder, searched recursively (every image file, or only the names ending
with ``--in-suffix``); DST is the output folder, where each mask becomes ``<name><--out-suffix>``
at the same relative path (``--in-suffix _mask.png``: ``a/0001_mask.png`` -> ``a/0001.png``),
or, for a single SRC file, a ``.png`` path. DST must not be SRC (the masks are kept).

Grey masks (single-channel, or RGB with R = G = B; the default):

    masks2labels.py masks/ labels/                  # 0/255 -> 0/1, 0/1 kept, 0/128/255 -> 0/1/2
    masks2labels.py masks/ labels/ --void-value 128 # level 128 (a "don't care" band) -> 255
    masks2labels.py masks/ labels/ --threshold 128  # anti-aliased or JPEG masks: >= 128 -> 1
    masks2labels.py masks/ labels/ --map 0:0 100:1 200:2 255:255

By default the grey levels found in ALL the masks become classes 0, 1, ... in ascending order
(levels 0 and 255 only: 0 -> 0, 255 -> 1, even in a file that holds one of them), except those
given by ``--void-value``, which become 255. Level 255 is void by default, as in VOC's labels,
when the other levels are 0..K-1 (0/1/255 -> 0/1/void) or when indexed PNGs give it VOC's void
colour (VOC palette labels with a border), never for levels 0 and 255 only; a ``note:`` line
says so and how to undo it. JPEG masks (blurred levels) need ``--threshold``.

Colour masks (one colour per class):

    masks2labels.py masks/ labels/ --palette 0,0,0 255,0,0 0,255,0     # class i: i-th colour
    masks2labels.py masks/ labels/ --palette-png some_voc_label.png    # an indexed PNG's palette
    masks2labels.py masks/ labels/ --palette voc    # RGB in VOC colours, 224,224,192 -> 255

A colour not in the palette stops the conversion (``--unknown void`` makes it void,
``--unknown nearest`` takes the nearest palette colour: anti-aliased edges); VOC's void colour
224,224,192 is void unless the palette has it.

``--dry-run`` only reports; ``--report FILE.json`` also writes the report as JSON. Then point
the dataset's ``seg_map_path`` at DST and set ``num_classes`` (binary segmentation is 2 classes:
softmax over background and foreground, as in the FCN paper).
"""
import argparse
import sys

from fcn_plugin.apis.masks import MaskError, convert_masks


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='a mask file or a folder of masks (searched recursively)')
    parser.add_argument('dst', help='the output folder (or .png file for a single mask)')
    parser.add_argument(
        '--in-suffix',
        help='only masks whose names end with this, which is '
        'replaced by --out-suffix (default: every image file, extension replaced)')
    parser.add_argument('--out-suffix', default='.png', help='output name ending (.png)')
    parser.add_argument(
        '--palette',
        nargs='+',
        metavar='R,G,B',
        help="colour masks: the colour of class 0, 1, ... (or 'voc')")
    parser.add_argument(
        '--palette-png',
        metavar='FILE',
        help='colour masks: the palette of this indexed PNG (index i = class i)')
    parser.add_argument(
        '--void-value',
        nargs='+',
        default=[],
        metavar='V',
        help='grey levels (or R,G,B colours) that become 255, void')
    parser.add_argument(
        '--threshold', type=float, help='grey masks: level >= T is class 1, below is class 0')
    parser.add_argument(
        '--map',
        nargs='+',
        metavar='VALUE:CLASS',
        help='grey masks: explicit value -> class table (255 = void)')
    parser.add_argument(
        '--unknown',
        choices=['error', 'void', 'nearest'],
        default='error',
        help='colour masks: a colour not in the palette stops (error), is void, '
        'or takes the nearest palette colour')
    parser.add_argument('--dry-run', action='store_true', help='report only, write nothing')
    parser.add_argument('--quiet', action='store_true', help='totals only, no line per file')
    parser.add_argument('--report', metavar='FILE.json', help='also write the report as JSON')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        convert_masks(
            args.src,
            args.dst,
            in_suffix=args.in_suffix,
            out_suffix=args.out_suffix,
            palette=args.palette,
            palette_png=args.palette_png,
            void_values=args.void_value,
            threshold=args.threshold,
            mapping=args.map,
            unknown=args.unknown,
            dry_run=args.dry_run,
            per_file=not args.quiet,
            report=args.report)
    except MaskError as error:
        print(f'masks2labels: {error}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
