"""Masks (0/255, grey levels, colours) to class indices: how each mask value becomes a class.

A label for training holds one class index per pixel: ``0..K-1``, and 255 for void (ignored by
the loss and the metrics). Masks as most tools save them are not that: a binary mask saved as
0/255 would make every foreground pixel void. A :class:`Converter` reads masks, plans the
value -> class table from the values found in ALL the masks (:meth:`Converter.plan`) and applies
it; :func:`build_converter` makes one from the options of
:func:`fcn_plugin.apis.convert_masks` (``tools/dataset_converters/masks2labels.py``), whose
flag names the messages use.

Grey masks (single-channel, or RGB with R = G = B): by default the levels found become classes
0, 1, ... in ascending order (levels 0 and 255 only: 0 -> 0, 255 -> 1), except the void values,
which become 255; or ``threshold`` (level >= T is class 1), or an explicit ``mapping``. By
default level 255 is also void, as in VOC's labels, when the other levels are class indices
``0..K-1`` (K >= 2: 0/1/255 is a binary label with a void border), or when indexed PNGs give
index 255 VOC's void colour (224, 224, 192), but never for levels 0 and 255 only;
:attr:`Converter.void_note` then says so and how to undo it. JPEG masks with more than two
levels (compression noise) raise :class:`MaskError` naming ``--threshold``, as do more than
``max_classes`` levels.
Colour masks: class i is the i-th palette colour; VOC's void colour (224, 224, 192), unless the
palette has it, is void (with a note); another colour not in the palette raises
:class:`MaskError` (``unknown='void'``: void, ``unknown='nearest'``: the nearest colour). An RGB
mask read as grey whose colours are all VOC's raises one naming ``--palette voc``.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from ..utils.label_png import voc_palette
from .label_checks import value_counts
from .mask_reading import (Colour, MaskError, colour_counts, colour_key, describe, index_colour,
                           key_colour, palette_from_png, parse_colour, read_colour, read_grey)

VOID = 255
VOC_VOID_COLOUR = (224, 224, 192)  # VOC's void (border) colour, index 255 of its palette
Found = Dict[int, Dict[str, int]]  # {value: {mask file: pixel count}}

__all__ = ['VOID', 'MaskError', 'Converter', 'build_converter', 'describe']


# ------------------------------------------------------------------------------ conversion
class Converter:
    """Map mask values (grey levels or colours) to class indices; see the module docstring."""

    def __init__(self,
                 palette: Optional[Sequence[Colour]] = None,
                 void_values: Sequence = (),
                 threshold: Optional[float] = None,
                 mapping: Optional[Dict[int, int]] = None,
                 unknown: str = 'error',
                 max_classes: int = 64):
        self.colour = palette is not None
        self.void = set(void_values)
        self.threshold = threshold
        self.mapping = dict(mapping) if mapping else None
        self.unknown = unknown
        self.max_classes = max_classes
        self.table: Dict[int, int] = {}
        self.voc_void_files = set()  # indexed PNGs read whose index 255 is VOC's void colour
        self.jpeg_files = set()  # masks read from JPEG files (lossy: levels blurred)
        self.void_note: Optional[str] = None  # why a value became void by default (plan)
        if self.colour:
            for index, c in enumerate(palette):
                self.table.setdefault(int(colour_key(np.array(c))), index)
            self.palette_keys = np.array(sorted(self.table))
            for c in self.void:
                self.table[int(colour_key(np.array(c)))] = VOID
            self.voc_void_key = int(colour_key(np.array(VOC_VOID_COLOUR)))

    def read(self, path: str) -> np.ndarray:
        if self.colour:
            return read_colour(path)
        with Image.open(path) as img:
            if img.format == 'JPEG':
                self.jpeg_files.add(path)
            if index_colour(img, VOID) == VOC_VOID_COLOUR:
                self.voc_void_files.add(path)
        return read_grey(path)

    def counts(self, mask: np.ndarray) -> Dict[int, int]:
        return colour_counts(mask) if self.colour else value_counts(mask)

    def plan(self, found: Found) -> Dict[int, int]:
        """The value -> class table for every value ``found`` (``{value: {file: count}}``);
        :attr:`void_note`: why level 255 (or VOC's void colour) became void without being asked
        to, or why a VOC-coloured 255 did not (else None)."""
        values = sorted(found)
        self.void_note = None
        if self.colour:
            table = {v: self._colour_class(v, found[v]) for v in values if v != self.voc_void_key}
            if self.voc_void_key in found:
                table[self.voc_void_key] = self.table.get(self.voc_void_key, VOID)
                if self.voc_void_key not in self.table:
                    self.void_note = (f"VOC's void colour {VOC_VOID_COLOUR} became void (if it "
                                      'is a class, add it to --palette)')
            return dict(sorted(table.items()))
        void = set(self.void)
        if self.mapping is None and self.threshold is None:
            self._check_jpeg([v for v in values if v not in void], found)
            if VOID in found and VOID not in void:
                is_void, self.void_note = self._void_by_default(
                    [v for v in values if v not in void], found)
                if is_void:
                    void.add(VOID)
        table = {v: VOID for v in values if v in void}
        rest = [v for v in values if v not in void]
        if self.mapping is not None:
            for v in rest:
                if v not in self.mapping:
                    files = sorted(found[v])
                    raise MaskError(f'value {v} has no --map entry ({len(files)} file(s), e.g. '
                                    f'{files[0]}); add {v}:CLASS')
                table[v] = self.mapping[v]
        elif self.threshold is not None:
            table.update({v: int(v >= self.threshold) for v in rest})
        elif set(rest) <= {0, 255}:
            table.update({v: int(v == 255) for v in rest})
        else:
            if len(rest) > self.max_classes:
                raise MaskError(
                    f'{len(rest)} grey levels found ({rest[0]}..{rest[-1]}): anti-aliased edges '
                    'or JPEG-compressed masks? Use --threshold T for a binary mask (level >= T '
                    'is foreground), or --map VALUE:CLASS ...')
            table.update({v: i for i, v in enumerate(rest)})
        bad = {v: c for v, c in table.items() if not 0 <= c <= 255}
        if bad:
            raise MaskError(f'classes must be 0..254 (255 is void): {bad}')
        return table

    def _check_jpeg(self, levels: List[int], found: Found) -> None:
        """JPEG masks have blurred levels (0/255 -> 0..12, 243..255): each would become a class."""
        jpeg = sorted({f for v in levels for f in found[v]} & self.jpeg_files)
        if jpeg and len(levels) > 2:
            raise MaskError(f'{len(jpeg)} JPEG mask(s), e.g. {jpeg[0]}: JPEG compression blurs '
                            f'the levels ({len(levels)} found: {levels[0]}..{levels[-1]}); use '
                            '--threshold 128 for a binary mask (level >= 128 is foreground), '
                            'or masks saved as PNG')

    def _void_by_default(self, levels: List[int], found: Found) -> Tuple[bool, Optional[str]]:
        """Whether level 255 is void (VOC's border) without ``--void-value 255``, and the note
        saying why: the other ``levels`` (not only 0: a 0/255 mask keeps 255 -> 1) are class
        indices 0..K-1, or the indexed PNGs that hold 255 give it VOC's void colour."""
        others = [v for v in levels if v != VOID]
        voc = sorted(set(found[VOID]) & self.voc_void_files)
        colour = f"{len(voc)} indexed PNG(s) give it VOC's void colour {VOC_VOID_COLOUR}"
        if set(others) <= {0}:  # a 0/255 mask: 255 is the foreground, unless told otherwise
            return False, (f'level 255 became class 1 (levels 0 and 255 only), though {colour}; '
                           'if it marks void, rerun with --void-value 255') if voc else None
        undo = ' '.join(f'{v}:{i}' for i, v in enumerate(others + [VOID]))
        if voc:
            why = colour
        elif others == list(range(len(others))):
            why = f'the other levels are class indices 0..{len(others) - 1}'
            alone = sorted(set(found[VOID]) - set(found[1]))  # 0/255 masks among 0/1 ones?
            if others == [0, 1] and alone:
                undo += (f'; {len(alone)} file(s) hold only 0 and 255, e.g. {alone[0]}: if 255 '
                         'is their foreground, --map 0:0 1:1 255:1')
        else:
            return False, None
        return True, (f"level 255 became void, as in VOC's labels ({why}); if 255 is a class, "
                      f'rerun with --map {undo}')

    def _colour_class(self, v: int, files: Dict[str, int]) -> int:
        if v in self.table:
            return self.table[v]
        if self.unknown == 'void':
            return VOID
        if self.unknown == 'nearest':
            colours = np.array([key_colour(int(k)) for k in self.palette_keys])
            d = ((colours - np.array(key_colour(v)))**2).sum(1)
            return self.table[int(self.palette_keys[int(d.argmin())])]
        raise MaskError(f'colour {key_colour(v)} is not in the palette ({sum(files.values())} '
                        f'px in {len(files)} file(s), e.g. {sorted(files)[0]}): add it to '
                        '--palette, or --void-value R,G,B it, or --unknown void / --unknown '
                        'nearest')

    def apply(self, mask: np.ndarray, table: Dict[int, int]) -> np.ndarray:
        """The ``(H, W)`` uint8 label of ``mask`` (as :meth:`read` returns it)."""
        keys = colour_key(mask) if self.colour else mask.astype(np.int64)
        values = np.array(sorted(table), dtype=np.int64)
        classes = np.array([table[v] for v in values], dtype=np.uint8)
        pos = np.searchsorted(values, keys)
        return classes[np.clip(pos, 0, len(values) - 1)]


def build_converter(palette: Union[None, str, Sequence] = None,
                    palette_png: Optional[str] = None,
                    void_values: Sequence = (),
                    threshold: Optional[float] = None,
                    mapping: Union[None, Dict[int, int], Sequence[str]] = None,
                    unknown: str = 'error') -> Converter:
    """A :class:`Converter` from the options as the tool takes them: ``palette`` a list of
    ``'R,G,B'`` / ``'#rrggbb'`` colours (or tuples), or ``'voc'``; ``palette_png`` an indexed
    PNG; ``void_values`` grey levels (or colours, with a palette); ``mapping``
    ``{value: class}`` or ``'VALUE:CLASS'`` strings."""
    if palette and palette_png:
        raise MaskError('give --palette or --palette-png, not both')
    void_values = list(void_values or ())
    colours = None
    if palette_png:
        colours = palette_from_png(palette_png)
    elif palette:
        if isinstance(palette, str):
            palette = [palette]
        voc = len(palette) == 1 and isinstance(palette[0], str) and palette[0] == 'voc'
        colours = ([tuple(c)
                    for c in voc_palette().tolist()] if voc else [parse_colour(c) for c in palette])
    if colours is not None and (threshold is not None or mapping):
        raise MaskError('--threshold and --map are for grey masks, not with a palette')
    if colours is not None:
        void = [parse_colour(v) for v in void_values]
    else:
        if not all(str(v).isdigit() for v in void_values):
            raise MaskError(f'--void-value {void_values}: grey levels are integers (R,G,B '
                            'colours need --palette)')
        void = [int(v) for v in void_values]
    table = None
    if isinstance(mapping, dict):
        table = {int(a): int(b) for a, b in mapping.items()}
    elif mapping:
        try:
            table = {int(a): int(b) for a, b in (m.split(':') for m in mapping)}
        except ValueError:
            raise MaskError(f'--map {mapping}: entries are VALUE:CLASS, e.g. 255:1') from None
    return Converter(colours, void, threshold, table, unknown)
