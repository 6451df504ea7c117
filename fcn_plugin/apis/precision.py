"""How far fp16/bf16 inference moves a trained model's predictions from fp32, on a test split
(``tools/precision_agreement.py``)."""
import copy
import os.path as osp
from typing import Dict, List, NamedTuple, Optional, Sequence

import torch

from ..utils.checkpoint_safety import install_safe_checkpoint_loaders
from ..utils.config_vars import ConfigError, load_config
from ..utils.inference_options import PRECISION_CHOICES, use_autocast_segmentor

__all__ = ['PrecisionAgreement', 'precision_agreement']


class PrecisionAgreement(NamedTuple):
    """What :func:`precision_agreement` measured."""
    config: str
    checkpoint: str
    images: int  # the test split's size
    labelled_pixels: int  # pixels whose label is not the dataset's ignore_index
    # {precision: {'metrics': {...}, 'agreement_with_fp32': share}} ('fp32': metrics only)
    results: Dict[str, dict]

    def lines(self) -> List[str]:
        """The report ``tools/precision_agreement.py`` prints."""
        lines = [
            f'{self.config} {self.checkpoint}: {self.images} images, {self.labelled_pixels} '
            'labelled pixels'
        ]
        for mode, r in self.results.items():
            agreement = (f'argmax = fp32 on {r["agreement_with_fp32"] * 100:.3f}% of pixels'
                         if mode != 'fp32' else 'reference')
            metrics = '  '.join(f'{k} {v:.2f}' for k, v in r['metrics'].items()
                                if isinstance(v, float))
            lines.append(f'{mode:5} {agreement:42} {metrics}')
        return lines


def precision_agreement(config: str,
                        checkpoint: str,
                        precisions: Sequence[str] = ('fp16', 'bf16'),
                        device: Optional[str] = None,
                        cfg_options: Optional[dict] = None) -> PrecisionAgreement:
    """Predict the config's test split with ``checkpoint`` in fp32 and in each of
    ``precisions`` (``AutocastEncoderDecoder.inference_precision``), batch by batch.

    fp16 autocast on the CPU is slow but numerically what a GPU does (same storage format; GPU
    kernels may sum in another order).

    Args:
        config: the config file (its model an EncoderDecoder or AutocastEncoderDecoder).
        checkpoint: the checkpoint file (loaded weights-only).
        precisions: the reduced precisions, 'fp16' and/or 'bf16'.
        device: where to run (default: cuda if available, else cpu).
        cfg_options: config settings to override, ``{key: value}`` as ``--cfg-options``.

    Returns:
        A :class:`PrecisionAgreement`: per precision the config's test metrics (FCN's aAcc,
        mAcc, mIoU, fwIoU) and, for the reduced ones, ``agreement_with_fp32``, the share of
        labelled pixels whose predicted class equals fp32's.

    Raises:
        FileNotFoundError: the config or the checkpoint does not exist.
        ConfigError: the model is not an EncoderDecoder; a precision is not fp16/bf16.
    """
    from mmengine.evaluator import Evaluator
    from mmengine.runner import Runner
    from mmseg.apis import init_model

    for path in (config, checkpoint):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{path} does not exist')
    unknown = [p for p in precisions if p not in PRECISION_CHOICES[1:]]
    if unknown:
        raise ConfigError(f'precisions {unknown} are not among {PRECISION_CHOICES[1:]}')
    install_safe_checkpoint_loaders()
    cfg = load_config(config, cfg_options)
    use_autocast_segmentor(cfg, what='reduced precisions')
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    model = init_model(cfg, checkpoint, device=device)
    loader = Runner.build_dataloader(cfg.test_dataloader)
    modes = ['fp32'] + list(precisions)
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
    return PrecisionAgreement(config, checkpoint, size, labelled, results)
