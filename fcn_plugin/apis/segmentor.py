"""The one way the APIs build a config's segmentor outside a runner (export, benchmark)."""
import contextlib
import logging
from typing import Iterator, Optional, Type

import torch
from mmengine.config import Config
from torch import nn

from ..utils.checkpoint_path import require_checkpoint_file

# the score layers start at zero (the reference's init): drawn at this std when no checkpoint
# is loaded, so that the logits are not all zero
RANDOM_SCORE_STD = 0.01


@contextlib.contextmanager
def logger_at_least(logger: logging.Logger, level: int) -> Iterator[None]:
    """``logger`` at ``level`` or above for the duration; its own level restored afterwards,
    so what other code logs is unchanged."""
    saved = logger.level
    logger.setLevel(max(saved, level))
    try:
        yield
    finally:
        logger.setLevel(saved)


def init_info_silenced():
    """mmengine's current logger at WARNING or above for the duration.

    ``BaseModule.init_weights`` logs, without a file handler (no runner, no work dir), one INFO
    record per parameter ("The value is the same before and after calling `init_weights`",
    about 120 lines for a VGG16 FCN) to the current logger's console. Outside a runner nobody
    reads them; warnings and errors still pass.
    """
    from mmengine.logging import MMLogger
    return logger_at_least(MMLogger.get_current_instance(), logging.WARNING)


def build_segmentor(cfg: Config,
                    checkpoint: Optional[str] = None,
                    seed: int = 0,
                    error: Type[Exception] = ValueError) -> nn.Module:
    """``cfg.model`` built on the CPU with SyncBN as BN, in eval mode, weights from
    ``checkpoint`` (every key, every shape; its ``dataset_meta`` kept).

    Nothing is downloaded (``pretrained``/``backbone.init_cfg`` are dropped). Without a
    checkpoint (tests, measurements) the weights are the config's initialisation, seeded, with
    the zero-initialised layers (the score layers) drawn at :data:`RANDOM_SCORE_STD`; mmengine's
    per-parameter initialisation report is not logged (:func:`init_info_silenced`). A missing,
    unsafe, damaged or unfitting checkpoint raises ``error`` (the caller's exception class)
    naming it.
    """
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint
    from mmseg.registry import MODELS
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model_cfg = cfg.model.copy()
    model_cfg.pop('pretrained', None)
    if isinstance(model_cfg.get('backbone'), dict):
        model_cfg.backbone.init_cfg = None
    model = revert_sync_batchnorm(MODELS.build(model_cfg))
    if checkpoint is None:
        torch.manual_seed(seed)
        with init_info_silenced():  # no per-parameter init report (see there)
            model.init_weights()
        for m in model.modules():
            if isinstance(m, nn.Conv2d) and not m.weight.detach().any():
                nn.init.normal_(m.weight, std=RANDOM_SCORE_STD)
        return model.eval()
    require_checkpoint_file(checkpoint, 'checkpoint file', error)
    try:
        ckpt = load_checkpoint(model, checkpoint, map_location='cpu', strict=True, logger='silent')
    except RuntimeError as e:  # missing / unexpected / mis-shaped keys
        first = str(e).strip().splitlines()
        raise error(f'checkpoint {checkpoint} does not fit the config\'s model: '
                    f'{" ".join(line.strip() for line in first[:3])[:400]}') from e
    except Exception as e:  # unsafe, truncated or not a checkpoint
        raise error(f'checkpoint {checkpoint} cannot be loaded: '
                    f'{type(e).__name__}: {str(e).splitlines()[0][:300]}') from e
    meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    if 'dataset_meta' in meta:
        model.dataset_meta = meta['dataset_meta']
    return model.eval()
