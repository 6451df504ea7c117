"""Test (and evaluate) a segmentor: mmseg 1.2.2's ``tools/test.py`` command line.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out DIR] [--show-dir DIR] [--tta]
        [--precision fp32|fp16|bf16] [--channels-last]
    bash tools/dist_test.sh CONFIG CHECKPOINT NPROC [args]     # torchrun, --launcher pytorch
    bash tools/slurm_test.sh PARTITION JOB CONFIG CHECKPOINT [args]

As ``tools/train.py``: imports ``fcn_plugin``, runs on the CPU without edits when there is no
CUDA (``gloo`` process group, DDP without device ids), ``nccl`` on GPUs.
"""
import argparse
import os.path as osp

from _bootstrap import import_plugin  # first: it quiets the pkg_resources warning
from mmengine.runner import Runner

import_plugin()

from fcn_plugin.utils.config_vars import load_config  # noqa: E402
from fcn_plugin.utils.inference_options import add_inference_args  # noqa: E402
from fcn_plugin.utils.inference_options import apply_inference_args
from fcn_plugin.utils.launch import parse_runner_args  # noqa: E402
from fcn_plugin.utils.launch import add_runner_args, prepare_distributed
from fcn_plugin.utils.tool_errors import run_tool  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description='MMSeg test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help=('if specified, the evaluation metric results will be dumped'
              'into the directory as json'))
    parser.add_argument(
        '--out', type=str, help='The directory to save output prediction for offline evaluation')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved. '
        'If specified, it will be automatically saved '
        'to the work_dir/timestamp/show_dir')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument('--tta', action='store_true', help='Test time augmentation')
    add_inference_args(parser)
    add_runner_args(parser)  # --cfg-options, --launcher, --local-rank
    return parse_runner_args(parser)


def trigger_visualization_hook(cfg, args):
    default_hooks = cfg.default_hooks
    if 'visualization' in default_hooks:
        visualization_hook = default_hooks['visualization']
        # Turn on visualization
        visualization_hook['draw'] = True
        if args.show:
            visualization_hook['show'] = True
            visualization_hook['wait_time'] = args.wait_time
        if args.show_dir:
            visualizer = cfg.visualizer
            visualizer['save_dir'] = args.show_dir
    else:
        raise RuntimeError('VisualizationHook must be included in default_hooks.'
                           'refer to usage '
                           '"visualization=dict(type=\'VisualizationHook\')"')
    return cfg


def main():
    args = parse_args()

    for path, what in ((args.config, 'config file'), (args.checkpoint, 'checkpoint')):
        if not osp.isfile(path):
            raise SystemExit(f'tools/test.py: {what} {path} does not exist')
    cfg = load_config(args.config, args.cfg_options)

    # work_dir is determined in this priority: CLI > segment in file > filename
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])

    cfg.load_from = args.checkpoint
    apply_inference_args(cfg, args, 'tools/test.py')

    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)

    if args.tta:
        if 'tta_pipeline' not in cfg:
            raise SystemExit(f'tools/test.py: --tta needs `tta_pipeline` in {args.config} '
                             '(mmseg\'s dataset bases define one)')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model

    # add output_dir in metric
    if args.out is not None:
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True

    prepare_distributed(cfg, args.launcher)

    runner = Runner.from_cfg(cfg)
    runner.test()


if __name__ == '__main__':
    run_tool(main, 'tools/test.py')  # a user's error: one final line on stderr
