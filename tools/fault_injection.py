"""Inject faults into real runs of the tools: nothing lost, nothing wrong loaded, nothing hung.

    python tools/fault_injection.py [--kills 10] [--seed 0] [--quick] [--with-dist]
                                    [--only KIND_OR_FAULT ...] [--work-dir DIR] [--json OUT]

Kills during training and saves (then ``--resume`` until done), hostile checkpoints and data
through ``tools/test.py``, ``train.py`` and ``check_dataset.py``, divergence, stop signals,
runs that would mix in a work dir, logs that cannot be written, EXIF-tagged photos, odd split
files, misspelt metric arguments, ``infer.py`` outputs that would clobber files and, with
``--with-dist``, a frozen rank and a killed launcher of ``tools/dist_train.sh``: each a real run
of a tool in a subprocess, on toy data in ``--work-dir`` (the experiment and its checks:
:mod:`fcn_plugin.apis.fault_suite`). Prints a table per kind (exit status, wall time to the
error including the ~5 s start-up, peak RSS of the process tree, last message) and
``faults tried N, survived M, data lost L``; exit status 1 if any case FAILs. ``--quick``: one
kill (during a save) and one case of most kinds. The small versions of these checks are in
``make test``.
"""
import argparse
import json
import sys

from fcn_plugin.apis.fault_suite import FaultInjectionError, fault_injection


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--kills', type=int, default=10, help='killed-and-resumed runs')
    parser.add_argument('--seed', type=int, default=0, help='seed of the kill moments')
    parser.add_argument('--quick', action='store_true', help="one kill and one case of most kinds")
    parser.add_argument('--with-dist', action='store_true', help='also the distributed faults')
    parser.add_argument(
        '--only',
        nargs='+',
        help='kinds (kills checkpoint data divergence dist signals workdirs reports inputs) or '
        'faults (e.g. "zip bomb") to run')
    parser.add_argument('--work-dir', help='keep everything here (default: a temporary folder)')
    parser.add_argument('--json', help='write the tables and the summary to this file')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        report = fault_injection(
            kills=args.kills,
            seed=args.seed,
            quick=args.quick,
            with_dist=args.with_dist,
            only=args.only,
            work_dir=args.work_dir)
    except FaultInjectionError as error:
        sys.exit(str(error))
    print(report.markdown())
    print('\n' + report.summary)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report.to_dict(), f, indent=1)
    return 0 if report.ok else 1


if __name__ == '__main__':
    sys.exit(main())
