"""The tools' inference flags (``--precision``, ``--channels-last``) as config settings."""
from mmengine.config import Config

PRECISION_CHOICES = ('fp32', 'fp16', 'bf16')


def add_inference_args(parser) -> None:
    parser.add_argument(
        '--precision', choices=PRECISION_CHOICES, default=None,
        help="inference precision: fp32 (exact; on CPU the fast exact path), or fp16/bf16 "
        "autocast (GPU; bf16 also on CPU); default: the config's model.inference_precision")
    parser.add_argument(
        '--channels-last', action='store_true',
        help='channels-last weights and inputs (GPU; on CPU the default fp32 path is faster)')


def apply_inference_args(cfg: Config, args, tool: str) -> Config:
    """Set ``cfg.model``'s precision / memory format from the flags (the model must be an
    ``EncoderDecoder``; it becomes the ``AutocastEncoderDecoder`` that reads them)."""
    if args.precision is None and not args.channels_last:
        return cfg
    model = cfg.model
    if model.get('type') == 'EncoderDecoder':
        model.type = 'AutocastEncoderDecoder'
    if model.get('type') != 'AutocastEncoderDecoder':
        raise SystemExit(f'{tool}: --precision/--channels-last need model.type '
                         f"'AutocastEncoderDecoder' (or mmseg's 'EncoderDecoder'), the config "
                         f"has {model.get('type')!r}")
    if args.precision is not None:
        model.inference_precision = args.precision
    if args.channels_last:
        model.channels_last = True
    return cfg
