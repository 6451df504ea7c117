"""What :func:`fcn_plugin.apis.benchmark` measures a run with: time, FLOPs and peak memory."""
import ctypes
import gc
import statistics
import time

import torch


class PeakMemory:
    """Peak memory of one call: CUDA allocator peak, or the process RSS high-water mark.

    * CUDA: ``torch.cuda.max_memory_allocated`` during the call; the excess is over the memory
      allocated before it (weights, inputs).
    * CPU: the process's resident-set high-water mark (``VmHWM`` in ``/proc/self/status``)
      during the call, after resetting it (``echo 5 > /proc/self/clear_refs``) and returning
      freed heap pages to the OS (glibc ``malloc_trim``); the excess is over the resident set
      before the call. Where the mark cannot be reset (not Linux), the process's lifetime peak
      (``ru_maxrss``), marked so, and no excess (nan).
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.cpu_resettable = device.type == 'cpu' and self._can_reset_hwm()
        try:
            self._libc = ctypes.CDLL('libc.so.6')
        except OSError:
            self._libc = None

    @staticmethod
    def _status_kib(field: str) -> int:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
        raise KeyError(field)

    @staticmethod
    def _can_reset_hwm() -> bool:
        try:
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')
            PeakMemory._status_kib('VmHWM')
            return True
        except (OSError, KeyError):
            return False

    def resident(self) -> float:
        """The process's resident set now, in bytes, after a garbage collection and returning
        freed heap pages (CPU, Linux); nan elsewhere."""
        if self.device.type != 'cpu' or not self.cpu_resettable:
            return float('nan')
        gc.collect()
        if self._libc is not None:
            self._libc.malloc_trim(0)
        return self._status_kib('VmRSS') * 1024

    def measure(self, fn):
        """Run ``fn()`` once; returns ``(peak_bytes, excess_bytes_over_before, how)``."""
        gc.collect()
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()
            before = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            fn()
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
            return peak, peak - before, 'torch.cuda.max_memory_allocated'
        if self._libc is not None:
            self._libc.malloc_trim(0)  # give freed heap pages back so RSS starts low
        if self.cpu_resettable:
            before = self._status_kib('VmRSS') * 1024
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')  # reset VmHWM to the current RSS
            fn()
            peak = self._status_kib('VmHWM') * 1024
            return peak, peak - before, 'RSS high-water mark (VmHWM)'
        import resource
        fn()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return peak, float('nan'), 'process lifetime peak RSS (ru_maxrss, not resettable)'


def count_flops(fn, model=None) -> int:
    """FLOPs of one ``fn()``, with ``model``'s fast inference paths off: the network's FLOPs
    (``torch.utils.flop_counter.FlopCounterMode``: a multiply-add is 2 FLOPs)."""
    from torch.utils.flop_counter import FlopCounterMode
    fast = [
        m for m in (model.modules() if model is not None else ())
        if getattr(m, 'fast_inference', False)
    ]
    for m in fast:
        m.fast_inference = False
    try:
        with FlopCounterMode(display=False) as counter:
            fn()
    finally:
        for m in fast:
            m.fast_inference = True
    return int(counter.get_total_flops())


def timed(fn, device: torch.device) -> float:
    """Seconds of one ``fn()`` (CUDA synchronised before and after)."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    fn()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def percentile(values, q):
    """Linear-interpolated percentile (q in [0, 100]) of a non-empty list."""
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summarize(times, flops, batch) -> dict:
    """The figures of ``times`` (seconds) of runs of ``batch`` images of ``flops`` each."""
    med = statistics.median(times)
    return dict(
        median_s=med,
        p90_s=percentile(times, 90),
        min_s=min(times),
        images_per_s=batch / med,
        gflop=flops / 1e9,
        gflops_per_s=flops / 1e9 / med,
        runs=len(times))


def measured(mem: PeakMemory, fn, times, flops, batch) -> dict:
    """:func:`summarize` plus the peak memory of one more run of ``fn`` and the times."""
    peak, excess, how = mem.measure(fn)
    return dict(
        summarize(times, flops, batch),
        peak_mem_bytes=peak,
        peak_mem_excess_bytes=excess,
        mem_how=how,
        times_s=times)


def agreement(ours: torch.Tensor, theirs: torch.Tensor) -> dict:
    """How far ``theirs`` (N x K x H x W logits) is from ``ours``: the max absolute difference,
    the max |logit| and the share of pixels with the same argmax."""
    ours, theirs = ours.float(), theirs.float()
    return dict(
        max_abs_logit_diff=float((ours - theirs).abs().max()),
        max_abs_logit=float(theirs.abs().max()),
        argmax_agreement=float((ours.argmax(1) == theirs.argmax(1)).float().mean()))


def fmt_bytes(n) -> str:
    """Bytes as MiB ('n/a' for nan)."""
    if n != n:  # nan
        return 'n/a'
    return f'{n / 2**20:.0f} MiB'


def format_row(name: str, r: dict) -> str:
    """One line of the report for :func:`measured`'s figures ``r``."""
    return (f'{name:<14} median {r["median_s"] * 1e3:9.1f} ms  p90 {r["p90_s"] * 1e3:9.1f} ms  '
            f'{r["images_per_s"]:7.3f} img/s  {r["gflop"]:8.1f} GFLOP  '
            f'{r["gflops_per_s"]:7.1f} GFLOP/s  peak mem {fmt_bytes(r["peak_mem_bytes"])} '
            f'(+{fmt_bytes(r["peak_mem_excess_bytes"])})')
