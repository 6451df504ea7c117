"""What the tools call, and what a notebook or a script calls the same way: each tool in
``tools/`` is argument parsing and one of these.

- runs: :func:`train`, :func:`test` (mmseg's ``tools/train.py``/``test.py``), :func:`infer`;
- data: :func:`check_dataset`, :func:`convert_masks` (masks to index labels),
  :func:`convert_sbd` (the reference's SBD/seg11valid layout), :func:`make_toy_data`;
- weights: :func:`convert_vgg`, :func:`convert_torchfcn`, :func:`convert_caffe`;
- deployment and measurement: :func:`export_onnx`, :func:`benchmark`,
  :func:`precision_agreement`, :func:`analyze_logs`, :func:`fault_injection`.

Each raises the project's exception classes with a message naming the file or key, and returns
what it found (a dict or a small result class).
"""
from .benchmarking import BenchmarkError, benchmark
from .convert_weights import Conversion, convert_caffe, convert_torchfcn, convert_vgg
from .dataset_check import DatasetCheck, check_dataset
from .export import ExportError, ExportResult, export_onnx
from .fault_suite import FaultInjectionError, FaultReport, fault_injection
from .inference import infer
from .log_curves import LogCurves, analyze_logs
from .masks import MaskError, convert_masks
from .precision import PrecisionAgreement, precision_agreement
from .run import test, train
from .sbd import DataError, SBDSplits, convert_sbd
from .segmentor import build_segmentor
from .toy_data import ToyData, make_toy_data

__all__ = [
    'BenchmarkError', 'Conversion', 'DataError', 'DatasetCheck', 'ExportError', 'ExportResult',
    'FaultInjectionError', 'FaultReport', 'LogCurves', 'MaskError', 'PrecisionAgreement',
    'SBDSplits', 'ToyData', 'analyze_logs', 'benchmark', 'build_segmentor', 'check_dataset',
    'convert_caffe', 'convert_masks', 'convert_sbd', 'convert_torchfcn', 'convert_vgg',
    'export_onnx', 'fault_injection', 'infer', 'make_toy_data', 'precision_agreement', 'test',
    'train'
]
