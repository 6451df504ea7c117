"""The inference options of the tools and APIs (``--precision``, ``--channels-last``) as config
settings of the ``AutocastEncoderDecoder``."""
from typing import Optional

from mmengine.config import Config

from .config_vars import ConfigError

PRECISION_CHOICES = ('fp32', 'fp16', 'bf16')


def add_inference_args(parser) -> None:
    parser.add_argument(
        '--precision',
        choices=PRECISION_CHOICES,
        default=None,
        help='inference precision: fp32 (exact; on CPU the fast exact path), or fp16/bf16 '
        "autocast (GPU; bf16 also on CPU); default: the config's model.inference_precision")
    parser.add_argument(
        '--channels-last',
        action='store_true',
        help='channels-last weights and inputs (GPU; on CPU the default fp32 path is faster)')


def use_autocast_segmentor(cfg: Config, tool: Optional[str] = None, what: str = 'these options'):
    """``cfg.model`` as an ``AutocastEncoderDecoder`` (mmseg's ``EncoderDecoder`` becomes one,
    same arguments); any other type is a :class:`ConfigError` naming it (``what`` needs it)."""
    model = cfg.model
    if model.get('type') == 'EncoderDecoder':
        model.type = 'AutocastEncoderDecoder'
    if model.get('type') != 'AutocastEncoderDecoder':
        raise ConfigError(f"{what} need model.type 'AutocastEncoderDecoder' (or mmseg's "
                          f"'EncoderDecoder'), the config has {model.get('type')!r}")
    return model


def set_inference_options(cfg: Config,
                          precision: Optional[str] = None,
                          channels_last: bool = False) -> Config:
    """Set ``cfg.model``'s inference precision / memory format (the model must be an
    ``EncoderDecoder``; it becomes the ``AutocastEncoderDecoder`` that reads them)."""
    if precision is None and not channels_last:
        return cfg
    if precision is not None and precision not in PRECISION_CHOICES:
        raise ConfigError(f'precision={precision!r} is not one of {PRECISION_CHOICES}')
    model = use_autocast_segmentor(cfg, what='--precision/--channels-last')
    if precision is not None:
        model.inference_precision = precision
    if channels_last:
        model.channels_last = True
    return cfg


def apply_inference_args(cfg: Config, args, tool: Optional[str] = None) -> Config:
    """:func:`set_inference_options` from parsed :func:`add_inference_args` flags."""
    return set_inference_options(cfg, args.precision, args.channels_last)
