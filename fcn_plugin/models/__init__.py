from .backbones import *  # noqa: F401,F403
from .data_preprocessor import PadSegDataPreProcessor  # noqa: F401
from .decode_heads import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .samplers import *  # noqa: F401,F403
from .segmentors import *  # noqa: F401,F403
