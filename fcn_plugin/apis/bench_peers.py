"""The runtimes :func:`fcn_plugin.apis.benchmark` compares the plugin's predict with
(``compare``), and the ratio table.

* ``plain``: the plain PyTorch module (:func:`.bench_phases.build_plain`).
* ``onnxruntime`` and ``openvino``: the model exported once per benchmark, before the first run,
  with the project's export (:func:`~.onnx_graph.export_graph` on
  :class:`~.onnx_graph.ONNXSegmentor`: the plain graph, as ``tools/deployment/pytorch2onnx.py``
  writes it, raw 0-255 float32 NCHW image in, the preprocessor's normalisation inside, logits
  cropped to the image out; dynamic batch, height and width) to a temporary file, deleted
  afterwards. onnxruntime: CPU execution provider, ``intra_op_num_threads`` = the benchmark's
  thread count, ``inter_op_num_threads`` 1, all graph optimisations. OpenVINO: the graph
  reshaped to the static benchmark shape and compiled for 'CPU' with ``INFERENCE_NUM_THREADS``
  = the thread count, ``INFERENCE_PRECISION_HINT`` f32 and ``PERFORMANCE_HINT`` LATENCY.

Each is an optional extra: a runtime whose packages are missing is reported in one line and
skipped (:func:`available`).
"""
import importlib
import logging
import os.path as osp
import statistics
import tempfile
import time

import torch

from .bench_phases import BenchmarkError
from .segmentor import logger_at_least

PEERS = ('plain', 'onnxruntime', 'openvino')
# the modules each runtime needs (the export's first), and the extra that installs them
NEEDS = dict(
    onnxruntime=('onnx', 'onnxscript', 'onnxruntime'), openvino=('onnx', 'onnxscript', 'openvino'))
EXTRA = dict(onnxruntime='onnx', openvino='openvino')
LABELS = dict(
    mmseg='fcn_plugin predict',
    plain='plain PyTorch',
    onnxruntime='onnxruntime',
    openvino='OpenVINO')


def parse_compare(text) -> list:
    """``'onnxruntime,openvino,plain'`` (or a list of names) -> the names, in order, once each;
    an unknown name is a :class:`BenchmarkError`."""
    names = text.split(',') if isinstance(text, str) else list(text or ())
    out = []
    for name in (n.strip().lower() for n in names):
        if name not in PEERS:
            raise BenchmarkError(f'--compare: unknown runtime {name!r} (choose from '
                                 f'{", ".join(PEERS)}, comma-separated)')
        if name not in out:
            out.append(name)
    return out


def available(names) -> dict:
    """``{name: why it is skipped}`` for the runtimes of ``names`` whose packages are missing."""
    skipped = {}
    for name in names:
        for module in NEEDS.get(name, ()):
            try:
                importlib.import_module(module)
            except ImportError:
                what = '' if module == name else f'needs {module}, '
                skipped[name] = f'{what}not installed (pip install -e .[{EXTRA[name]}])'
                break
    return skipped


class Peers:
    """The exported graph and, per batch, a session of each ONNX runtime; a context manager
    that exports on entry (if any ONNX runtime is asked for) and deletes the file on exit."""

    def __init__(self, model, names, shape, threads, mem, onnx_file=None):
        self.model, self.shape, self.threads, self.mem = model, tuple(shape), threads, mem
        self.names = [n for n in names if n in NEEDS]
        self.path, self.export_s, self._dir = None, None, None
        self.given = onnx_file  # an export of this model made before (kept, not timed)

    def __enter__(self):
        if self.names and self.given:
            self.path = self.given
        elif self.names:
            from .onnx_graph import ONNXSegmentor, export_graph
            self._dir = tempfile.TemporaryDirectory(prefix='fcn_plugin_bench_')
            self.path = osp.join(self._dir.name, 'model.onnx')
            start = time.perf_counter()
            # torch's ONNX exporter without its notes (missing torchvision ops and the like)
            with logger_at_least(logging.getLogger('torch.onnx'), logging.ERROR):
                export_graph(ONNXSegmentor(self.model.eval()).eval(), self.path, self.shape)
            self.export_s = time.perf_counter() - start
        return self

    def __exit__(self, *exc):
        if self._dir is not None:
            self._dir.cleanup()

    def graph_flops(self, raw: torch.Tensor) -> int:
        """FLOPs of the exported network (the plain forward of ONNXSegmentor in PyTorch)."""
        from .measure import count_flops
        from .onnx_graph import ONNXSegmentor
        wrapper = ONNXSegmentor(self.model).eval()
        with torch.no_grad():
            return count_flops(lambda: wrapper(raw), self.model)

    def session(self, name, image):
        """A function that runs the graph in runtime ``name`` on ``image`` (numpy) and returns
        the logits (numpy, N x K x H x W)."""
        if name == 'onnxruntime':
            import onnxruntime as ort
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            sess = ort.InferenceSession(self.path, opts, providers=['CPUExecutionProvider'])
            return lambda: sess.run(['logits'], {'image': image})[0]
        import openvino as ov
        core = ov.Core()
        graph = core.read_model(self.path)
        graph.reshape(list(image.shape))
        compiled = core.compile_model(
            graph, 'CPU', {
                'INFERENCE_NUM_THREADS': self.threads,
                'INFERENCE_PRECISION_HINT': 'f32',
                'PERFORMANCE_HINT': 'LATENCY'
            })
        request = compiled.create_infer_request()

        def run():
            request.infer({0: image})
            return request.get_output_tensor(0).data

        return run

    def contestant(self, name, raw: torch.Tensor):
        """``(run, logits, held_bytes)`` of runtime ``name`` on the raw images ``raw``:
        ``run()`` is what is timed (the graph, then the argmax over the classes, numpy), and
        ``held_bytes`` the resident memory the session keeps (weights, buffers), measured
        around its creation and a first run."""
        image = raw.float().contiguous().numpy()
        before = self.mem.resident()
        logits = self.session(name, image)
        logits()
        held = self.mem.resident() - before
        return (lambda: logits().argmax(1)), (lambda: torch.from_numpy(logits().copy())), held


def compare_section(runs, names, skipped, threads, export_s) -> dict:
    """The ``compare`` entry of the figures: per batch size a row per runtime (the plugin's
    predict first) with its times, the ratio to predict's, memory and agreement."""
    out = dict(
        reference='mmseg',
        runtimes=list(names),
        skipped=dict(skipped),
        threads=threads,
        onnx_export_s=export_s,
        runs=[])
    for run in runs:
        inf = run['inference']
        ref = inf['mmseg']
        rows = []
        for name in ['mmseg'] + [n for n in names if n in inf]:
            r, check = inf[name], inf.get('checks', {}).get(name)
            pairs = [a / b for a, b in zip(r['times_s'], ref['times_s'])]
            rows.append(
                dict(
                    runtime=name,
                    median_s=r['median_s'],
                    p90_s=r['p90_s'],
                    ratio_to_predict=r['median_s'] / ref['median_s'],
                    ratio_paired_median=statistics.median(pairs),
                    peak_mem_bytes=r['peak_mem_bytes'],
                    peak_mem_excess_bytes=r['peak_mem_excess_bytes'],
                    held_bytes=r.get('held_bytes', float('nan')),
                    rel_logit_diff=(check['max_abs_logit_diff'] /
                                    check['max_abs_logit']) if check else 0.0,
                    argmax_agreement=check['argmax_agreement'] if check else 1.0))
        out['runs'].append(dict(batch_size=run['batch_size'], rows=rows))
    return out


def format_table(section, shape) -> list:
    """The ratio table's lines."""
    from .measure import fmt_bytes
    h, w = shape
    lines = []
    for run in section['runs']:
        lines += [
            f'against other runtimes: batch {run["batch_size"]}, {h}x{w}, '
            f'{section["threads"]} threads (time / fcn_plugin predict\'s; logits vs predict\'s)',
            f'{"runtime":<20}{"median":>10}{"p90":>10}{"x predict":>11}{"peak RSS":>11}'
            f'{"(+run)":>10}{"held":>10}{"max|diff|/max|logit|":>22}{"argmax":>9}'
        ]
        for r in run['rows']:
            lines.append(f'{LABELS[r["runtime"]]:<20}{r["median_s"] * 1e3:>7.1f} ms'
                         f'{r["p90_s"] * 1e3:>7.1f} ms{r["ratio_to_predict"]:>10.3f}x'
                         f'{fmt_bytes(r["peak_mem_bytes"]):>11}'
                         f'{"+" + fmt_bytes(r["peak_mem_excess_bytes"]):>10}'
                         f'{fmt_bytes(r["held_bytes"]):>10}{r["rel_logit_diff"]:>22.1e}'
                         f'{r["argmax_agreement"] * 100:>8.2f}%')
        for name, why in section['skipped'].items():
            lines.append(f'{LABELS[name]:<20}skipped: {why}')
    return lines
