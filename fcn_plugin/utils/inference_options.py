"""The tools' inference flags (``--precision``, ``--channels-last``) as config settings."""
from mmengine.config import Config

PRECISION_CHOICES = ('fp32', 'fp16', 'bf16')


def add_inference_args(parser) -> None:
    parser.add_argument(
        '--precision',
        choices=PRECISION_CHOICES,
        default=None,
        help="inference precision: fp32 (exact; on CPU the fast exact path), or fp16/bf16 "
        "autocast (GPU; bf16 also on CPU); default: the config's model.inference_precision")
    parser.add_argument(
        '--channels-last',
        action='store_true',
        help='channels-last weights and inputs (GPU; on CPU the default fp32 path is faster)')


def use_autocast_segmentor(cfg: Config, tool: str, what: str):
    """``cfg.model`` as an ``AutocastEncoderDecoder`` (mmseg's ``EncoderDecoder`` becomes one,
    same arguments); any other type is a one-line error naming it."""
    model = cfg.model
    if model.get('type') == 'EncoderDecoder':
        model.type = 'AutocastEncoderDecoder'
    if model.get('type') != 'AutocastEncoderDecoder':
        raise SystemExit(f"{tool}: {what} need model.type 'AutocastEncoderDecoder' (or mmseg's "
                         f"'EncoderDecoder'), the config has {model.get('type')!r}")
    return model


def apply_inference_args(cfg: Config, args, tool: str) -> Config:
    """Set ``cfg.model``'s precision / memory format from the flags (the model must be an
    ``EncoderDecoder``; it becomes the ``AutocastEncoderDecoder`` that reads them)."""
    if args.precision is None and not args.channels_last:
        return cfg
    model = use_autocast_segmentor(cfg, tool, '--precision/--channels-last')
    if args.precision is not None:
        model.inference_precision = args.precision
    if args.channels_last:
        model.channels_last = True
    return cfg
