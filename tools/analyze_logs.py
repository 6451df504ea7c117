"""Plot the training loss and the validation mIoU of a work dir over iterations (PNG).

    python tools/analyze_logs.py WORK_DIR [--out plot.png] [--keys loss mIoU] [--run TIMESTAMP]

Reads every run's ``WORK_DIR/<timestamp>/vis_data/scalars.json`` in time order (a resumed run
continues the iteration count; ``--run`` reads one), or a ``scalars.json`` given as WORK_DIR,
and draws one panel per key; prints each key's last value (and the best of validation keys).
What is read and how: :mod:`fcn_plugin.apis.log_curves`.
"""
import argparse
import sys

from fcn_plugin.apis.log_curves import analyze_logs


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Plot loss and mIoU of a work dir')
    parser.add_argument('work_dir', help='work dir of tools/train.py, or a scalars.json file')
    parser.add_argument('--out', default=None, help='output PNG (default WORK_DIR/curves.png)')
    parser.add_argument(
        '--keys',
        nargs='+',
        default=['loss', 'mIoU'],
        help='logged keys to plot, one panel each (default: loss mIoU)')
    parser.add_argument(
        '--run', default=None, help='only this run (timestamp folder name); default: all runs')
    parser.add_argument('--title', default=None, help='figure title')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        result = analyze_logs(args.work_dir, args.out, args.keys, args.run, args.title)
    except (FileNotFoundError, ValueError) as e:
        print(f'tools/analyze_logs.py: {e}', file=sys.stderr)
        return 1
    for line in result.summary():
        print(line)
    print(f'plot written to {result.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
