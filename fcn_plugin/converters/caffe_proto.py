"""Read the layers of a Caffe ``.caffemodel`` (a binary ``NetParameter``) without Caffe or protobuf.

A small reader of the protobuf wire format (varints, length-delimited fields, fixed32/fixed64,
packed and unpacked repeated fields) that keeps only what a weight converter needs: each layer's
name, type and parameter blobs (shape and float data). Field numbers are those of BVLC Caffe's
``src/caffe/proto/caffe.proto``:

- ``NetParameter``: ``name = 1``, ``layers = 2`` (legacy ``V1LayerParameter``),
  ``layer = 100`` (``LayerParameter``).
- ``LayerParameter``: ``name = 1``, ``type = 2`` (string), ``blobs = 7``.
- ``V1LayerParameter``: ``layer = 1`` (the older ``V0LayerParameter``: ``name = 1``, ``type = 2``
  (string), ``blobs = 50``), ``name = 4``, ``type = 5`` (the ``LayerType`` enum), ``blobs = 6``.
- ``BlobProto``: ``num = 1``, ``channels = 2``, ``height = 3``, ``width = 4`` (legacy 4-d shape),
  ``data = 5`` (float, packed), ``diff = 6``, ``shape = 7`` (``BlobShape``: ``dim = 1``, packed
  int64), ``double_data = 8``, ``double_diff = 9``.

Other fields (tops, bottoms, layer parameters, gradients) are skipped. Everything else in the file
is still walked, so a truncated or foreign file fails with :class:`CaffeModelError` rather than
yielding half a net. Pure Python and numpy; blob data is decoded with ``numpy.frombuffer``, so the
528 MB VGG16 classifier reads in seconds.
"""
from dataclasses import dataclass, field
from typing import List, Tuple

import numpy as np

VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5

# V1LayerParameter.LayerType, named as Caffe's upgrade_proto.cpp (UpgradeV1LayerType) names them.
V1_LAYER_TYPES = {
    0: '',
    35: 'AbsVal',
    1: 'Accuracy',
    30: 'ArgMax',
    2: 'BNLL',
    3: 'Concat',
    37: 'ContrastiveLoss',
    4: 'Convolution',
    39: 'Deconvolution',
    5: 'Data',
    6: 'Dropout',
    32: 'DummyData',
    7: 'EuclideanLoss',
    25: 'Eltwise',
    38: 'Exp',
    8: 'Flatten',
    9: 'HDF5Data',
    10: 'HDF5Output',
    28: 'HingeLoss',
    11: 'Im2col',
    12: 'ImageData',
    13: 'InfogainLoss',
    14: 'InnerProduct',
    15: 'LRN',
    29: 'MemoryData',
    16: 'MultinomialLogisticLoss',
    34: 'MVN',
    17: 'Pooling',
    26: 'Power',
    18: 'ReLU',
    19: 'Sigmoid',
    27: 'SigmoidCrossEntropyLoss',
    36: 'Silence',
    20: 'Softmax',
    21: 'SoftmaxWithLoss',
    22: 'Split',
    33: 'Slice',
    23: 'TanH',
    24: 'WindowData',
    31: 'Threshold'
}
# The few V0 (string) types that carry parameters, named as today.
V0_LAYER_TYPES = {'conv': 'Convolution', 'innerproduct': 'InnerProduct', 'deconv': 'Deconvolution'}


class CaffeModelError(ValueError):
    """The bytes are not a (complete) binary Caffe ``NetParameter``."""


@dataclass
class CaffeLayer:
    name: str
    type: str
    blobs: List[np.ndarray] = field(default_factory=list)  # float32 or float64, own memory


@dataclass
class CaffeNet:
    name: str
    layers: List[CaffeLayer]
    format: str  # 'layer' (LayerParameter), 'layers' (legacy V1/V0) or 'layer+layers'


def _varint(buf: memoryview, pos: int, end: int) -> Tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise CaffeModelError(f'truncated varint at byte {pos}')
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise CaffeModelError(f'malformed varint ending at byte {pos}')


def _field(buf: memoryview, pos: int, end: int):
    """The field starting at ``pos``: ``(number, wire_type, value, value_pos, next_pos)``.

    ``value`` is an int for varints, the ``(begin, stop)`` byte offsets of the payload for
    length-delimited fields and of the raw bytes for fixed32/fixed64.
    """
    key, pos = _varint(buf, pos, end)
    number, wire = key >> 3, key & 7
    if number == 0:
        raise CaffeModelError(f'invalid field number 0 at byte {pos}')
    if wire == VARINT:
        value, new = _varint(buf, pos, end)
    elif wire == LENGTH_DELIMITED:
        length, begin = _varint(buf, pos, end)
        new = begin + length
        value = (begin, new)
    elif wire in (FIXED32, FIXED64):
        new = pos + (4 if wire == FIXED32 else 8)
        value = (pos, new)
    else:  # groups (3, 4; unused by caffe.proto) and 6, 7 (invalid)
        raise CaffeModelError(f'unsupported wire type {wire} (field {number}) at byte {pos}')
    if new > end:
        raise CaffeModelError(f'field {number} at byte {pos} runs past the end of its '
                              f'message (byte {end}): truncated')
    return number, wire, value, pos, new


def _fields(buf: memoryview, start: int, end: int):
    """Yield ``(field_number, wire_type, value)`` for each field in ``buf[start:end]``."""
    pos = start
    while pos < end:
        number, wire, value, _, pos = _field(buf, pos, end)
        yield number, wire, value


def _string(buf: memoryview, span: Tuple[int, int]) -> str:
    return bytes(buf[span[0]:span[1]]).decode('utf-8', errors='replace')


def _unpacked_run(buf: memoryview, pos: int, end: int, tag: int, size: int, dtype: str):
    """Values of a run of unpacked fixed-size fields with the one-byte key ``tag``, the first
    one's value starting at ``pos``; returns ``(values, end_of_run)``."""
    raw = np.frombuffer(buf, dtype=np.uint8, count=end - pos + 1, offset=pos - 1)
    stride = size + 1  # key byte + value
    count = len(raw) // stride
    records = raw[:count * stride].reshape(count, stride)
    breaks = np.flatnonzero(records[:, 0] != tag)
    count = int(breaks[0]) if len(breaks) else count
    values = records[:count, 1:].copy().view(dtype).reshape(-1)
    return values, pos - 1 + count * stride


def _packed(buf: memoryview, span: Tuple[int, int], dtype: str, size: int) -> np.ndarray:
    begin, stop = span
    if (stop - begin) % size:
        raise CaffeModelError(f'packed field of {stop - begin} bytes at byte {begin} is not a '
                              f'whole number of {size}-byte values')
    return np.frombuffer(buf, dtype=dtype, count=(stop - begin) // size, offset=begin).copy()


def _packed_varints(buf: memoryview, span: Tuple[int, int]) -> List[int]:
    values, pos = [], span[0]
    while pos < span[1]:
        value, pos = _varint(buf, pos, span[1])
        values.append(value)
    return values


def _int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _blob_shape(buf: memoryview, span: Tuple[int, int]) -> List[int]:
    dims = []
    for number, wire, value in _fields(buf, *span):
        if number == 1 and wire == LENGTH_DELIMITED:
            dims.extend(_packed_varints(buf, value))
        elif number == 1 and wire == VARINT:
            dims.append(value)
    return [_int64(d) for d in dims]


def _blob(buf: memoryview, span: Tuple[int, int]) -> np.ndarray:
    """A ``BlobProto``: its data (float32, or float64 from ``double_data``) in its shape."""
    shape, legacy, chunks = None, {}, {np.float32: [], np.float64: []}
    pos, end = span
    while pos < end:
        number, wire, value, value_pos, pos = _field(buf, pos, end)
        if number == 7 and wire == LENGTH_DELIMITED:
            shape = (shape or []) + _blob_shape(buf, value)
        elif number in (1, 2, 3, 4) and wire == VARINT:
            legacy[number] = _int64(value)
        elif number in (5, 8):
            dtype, size, fixed = (('<f4', 4, FIXED32) if number == 5 else ('<f8', 8, FIXED64))
            target = chunks[np.float32 if number == 5 else np.float64]
            if wire == LENGTH_DELIMITED:  # packed (what Caffe writes)
                target.append(_packed(buf, value, dtype, size))
            elif wire == fixed:  # unpacked: the whole run of these fields at once
                values, pos = _unpacked_run(buf, value_pos, end, (number << 3) | wire, size, dtype)
                target.append(values)
            else:
                raise CaffeModelError(f'blob data field {number} has wire type {wire}')
    if chunks[np.float32] and chunks[np.float64]:
        raise CaffeModelError('a blob has both float and double data')
    data_chunks = chunks[np.float32] or chunks[np.float64] or [np.zeros(0, np.float32)]
    data = np.concatenate(data_chunks) if len(data_chunks) > 1 else data_chunks[0]
    if shape is None:  # the legacy 4-d shape, else a vector
        shape = [legacy.get(i, 0) for i in (1, 2, 3, 4)] if legacy else [data.size]
    if any(d < 0 for d in shape) or int(np.prod(shape, dtype=np.int64)) != data.size:
        raise CaffeModelError(f'a blob of shape {tuple(shape)} has {data.size} values')
    return data.astype(data.dtype.newbyteorder('='), copy=False).reshape(shape)


def _layer(buf: memoryview, span: Tuple[int, int], fields: dict) -> CaffeLayer:
    """A layer message; ``fields`` names the numbers of its name, type and blobs fields."""
    name, type_, blobs, v0 = '', '', [], None
    for number, wire, value in _fields(buf, *span):
        if number == fields['name'] and wire == LENGTH_DELIMITED:
            name = _string(buf, value)
        elif number == fields['type'] and wire == LENGTH_DELIMITED:
            type_ = _string(buf, value)
            type_ = V0_LAYER_TYPES.get(type_, type_) if fields.get('v0') else type_
        elif number == fields['type'] and wire == VARINT:
            type_ = V1_LAYER_TYPES.get(value, f'V1LayerType{value}')
        elif number == fields['blobs'] and wire == LENGTH_DELIMITED:
            try:
                blobs.append(_blob(buf, value))
            except CaffeModelError as error:
                raise CaffeModelError(f'layer {name or "?"!r}, blob {len(blobs)}: {error}') \
                    from None
        elif number == fields.get('v0_layer') and wire == LENGTH_DELIMITED:
            v0 = _layer(buf, value, dict(name=1, type=2, blobs=50, v0=True))
    if v0 is not None:  # a V1 wrapper around a V0 layer: the V0 one holds name, type and blobs
        return CaffeLayer(name or v0.name, type_ or v0.type, blobs or v0.blobs)
    return CaffeLayer(name, type_, blobs)


def parse_net(data) -> CaffeNet:
    """Parse the bytes of a binary ``NetParameter`` (a ``.caffemodel``)."""
    buf = memoryview(data)
    name, layers, kinds = '', [], set()
    for number, wire, value in _fields(buf, 0, len(buf)):
        if number == 1 and wire == LENGTH_DELIMITED:
            name = _string(buf, value)
        elif number == 100 and wire == LENGTH_DELIMITED:
            layers.append(_layer(buf, value, dict(name=1, type=2, blobs=7)))
            kinds.add('layer')
        elif number == 2 and wire == LENGTH_DELIMITED:
            layers.append(_layer(buf, value, dict(name=4, type=5, blobs=6, v0_layer=1)))
            kinds.add('layers')
    if not layers:
        raise CaffeModelError('no layers: not a Caffe NetParameter')
    return CaffeNet(name, layers, '+'.join(sorted(kinds)))


def read_caffemodel(path: str) -> CaffeNet:
    """:func:`parse_net` on a file; errors name the file."""
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as error:
        raise CaffeModelError(f'cannot read caffemodel {path}: {error.strerror or error}') \
            from None
    try:
        return parse_net(data)
    except CaffeModelError as error:
        raise CaffeModelError(f'{path} is not a valid .caffemodel (binary Caffe NetParameter; '
                              f'truncated, corrupt or another format?): {error}') from None
