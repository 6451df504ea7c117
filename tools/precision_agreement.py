"""How far fp16/bf16 inference moves a trained model's predictions from fp32, on a test split.

    python tools/precision_agreement.py CONFIG CHECKPOINT [--precisions fp16 bf16]
        [--device cpu|cuda] [--cfg-options k=v ...] [--json OUT]

Runs the config's test dataloader once; each batch is predicted in fp32 and in every listed
precision (``AutocastEncoderDecoder.inference_precision``). Reports, per precision, the share of
labelled pixels whose predicted class equals fp32's, and the config's metrics (FCN's aAcc, mAcc,
mIoU, fwIoU) next to fp32's. fp16 autocast on the CPU is slow but numerically what a GPU does
(same storage format; GPU kernels may sum in another order).
"""
import argparse
import copy
import json
import os.path as osp

import torch
from _bootstrap import import_plugin  # first: it quiets the pkg_resources warning
from mmengine.config import DictAction
from mmengine.evaluator import Evaluator
from mmengine.runner import Runner

import_plugin()

from mmseg.apis import init_model  # noqa: E402

from fcn_plugin.utils.config_vars import load_config  # noqa: E402
from fcn_plugin.utils.inference_options import PRECISION_CHOICES  # noqa: E402
from fcn_plugin.utils.inference_options import use_autocast_segmentor


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='fp16/bf16 predictions against fp32')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument(
        '--precisions', nargs='+', default=['fp16', 'bf16'], choices=PRECISION_CHOICES[1:])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--json', help='also write the figures to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    for path in (args.config, args.checkpoint):
        if not osp.isfile(path):
            raise SystemExit(f'tools/precision_agreement.py: {path} does not exist')
    cfg = load_config(args.config, args.cfg_options)
    use_autocast_segmentor(cfg, 'tools/precision_agreement.py', 'reduced precisions')
    model = init_model(cfg, args.checkpoint, device=args.device)
    loader = Runner.build_dataloader(cfg.test_dataloader)
    modes = ['fp32'] + list(args.precisions)
    evaluators = {m: Evaluator(cfg.test_evaluator) for m in modes}
    for evaluator in evaluators.values():
        evaluator.dataset_meta = loader.dataset.metainfo
    same = {m: 0 for m in modes[1:]}
    labelled = 0
    for batch in loader:
        data = model.data_preprocessor(batch, False)
        labels = {}
        for mode in modes:
            model.inference_precision = mode
            with torch.no_grad():  # predict writes into the samples: copy what it wrote
                samples = model.predict(data['inputs'], copy.deepcopy(data['data_samples']))
            evaluators[mode].process(data_samples=samples, data_batch=batch)
            labels[mode] = [s.pred_sem_seg.data for s in samples]
        for i, sample in enumerate(data['data_samples']):
            mask = sample.gt_sem_seg.data.to(labels['fp32'][i].device) != \
                loader.dataset.ignore_index
            labelled += int(mask.sum())
            for mode in modes[1:]:
                same[mode] += int(((labels[mode][i] == labels['fp32'][i]) & mask).sum())
    size = len(loader.dataset)
    results = {m: dict(metrics=evaluators[m].evaluate(size)) for m in modes}
    for mode in modes[1:]:
        results[mode]['agreement_with_fp32'] = same[mode] / max(labelled, 1)
    print(f'{args.config} {args.checkpoint}: {size} images, {labelled} labelled pixels')
    for mode in modes:
        r = results[mode]
        agreement = (f'argmax = fp32 on {r["agreement_with_fp32"] * 100:.3f}% of pixels'
                     if mode != 'fp32' else 'reference')
        metrics = '  '.join(f'{k} {v:.2f}' for k, v in r['metrics'].items() if isinstance(v, float))
        print(f'{mode:5} {agreement:42} {metrics}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == '__main__':
    main()
