"""mmengine's ``LoggerHook`` with the test-metrics JSON written by one process only, and logs that
never stop a run: a log line, scalar or the JSON that cannot be written (disk full, read-only,
over quota) is reported once and the run goes on (:class:`RankZeroLoggerHook`)."""
import logging
import os.path as osp
from typing import Callable, Dict, Optional

from mmengine.dist import is_main_process
from mmengine.hooks import LoggerHook
from mmengine.logging import MMLogger, print_log
from mmseg.registry import HOOKS

# the writes a failure of which is reported and survived, per vis backend
GUARDED_METHODS = ('add_scalars', 'add_scalar', 'add_image')


def report_write_failure(reported: set, key: str, what: str, error: OSError, owner: str) -> None:
    """Warn, once per ``key`` (in ``reported``), that ``what`` could not be written and the run
    goes on without it; the warning names the file (the error's, else ``what``) and the error."""
    if key in reported:
        return
    reported.add(key)
    where = f'{what} ({error.filename})' if getattr(error, 'filename', None) else what
    reason = error.strerror or str(error) or type(error).__name__
    code = f'[Errno {error.errno}] ' if error.errno else ''
    print_log(
        f'{owner}: could not write {where}: {type(error).__name__}: {code}{reason}. The run goes '
        'on without it (further failures to write it are not reported); free space or fix the '
        'folder to get it back. Checkpoints are not affected: a failed save still stops the run.',
        logger='current',
        level=logging.WARNING)


@HOOKS.register_module()
class RankZeroLoggerHook(LoggerHook):
    """:class:`mmengine.hooks.LoggerHook`, except that after testing only rank 0 writes
    ``<work_dir>/<timestamp>/<timestamp>.json``, and that no failure to write a log stops the
    run.

    mmengine 0.10.7 dumps that file from every rank to the same path: with ``dist_test.sh`` the
    concurrent writes (of slightly different lengths: each rank has its own timings) can leave
    invalid JSON. Our configs select it as ``default_hooks.logger`` (same arguments as
    ``LoggerHook``); mmengine's ``LoggerHook`` stays as it is for every other config.

    Logs are not worth a run: an ``OSError`` (disk full, read-only, over quota, permission)
    writing the scalars through the visualizer's backends (``vis_data/scalars.json``,
    ``<timestamp>.json``, TensorBoard...; each backend on its own, so one that fails does not
    starve the others), the test JSON, the log copies to ``out_dir``, or a line of the text log
    file (Python's logging would print a traceback for every line) is reported once per file
    with a warning naming it and the error, and the run goes on. Checkpoint saves are not logs:
    their failures still stop the run (``AtomicCheckpointHook``).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._reported: set = set()
        # built by the runner after its logger: guard the log file before any hook logs
        self._guard_log_files(MMLogger.get_current_instance())

    def before_run(self, runner) -> None:
        super().before_run(runner)
        self._guard_log_files(getattr(runner, 'logger', None))
        self._guard_vis_backends(getattr(runner, 'visualizer', None))

    def after_test_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        if is_main_process():
            try:
                super().after_test_epoch(runner, metrics)
            except OSError as error:
                path = osp.join(runner.log_dir, self.json_log_path or '<timestamp>.json')
                self._report(f'json:{path}', f'the test metrics JSON {path}', error)
            return
        _, log_str = runner.log_processor.get_log_after_epoch(
            runner, len(runner.test_dataloader), 'test', with_non_scalar=True)
        runner.logger.info(log_str)

    def after_run(self, runner) -> None:
        try:
            super().after_run(runner)
        except OSError as error:  # closing the backends, copying the logs to out_dir
            self._report(
                'after_run', f'the logs (copies to {self.out_dir})'
                if self.out_dir else 'the logs (closing the vis backends)', error)

    # ------------------------------------------------------------------------------ guards
    def _report(self, key: str, what: str, error: OSError) -> None:
        report_write_failure(self._reported, key, what, error, type(self).__name__)

    def _guard_vis_backends(self, visualizer) -> None:
        """Wrap each backend's writes (once per backend object)."""
        backends = getattr(visualizer, '_vis_backends', None) or {}
        for name, backend in backends.items():
            for method in GUARDED_METHODS:
                write = getattr(backend, method, None)
                if write is None or getattr(write, '_fcn_write_guard', False):
                    continue
                setattr(backend, method, self._guarded(write, backend, name, method))

    def _guarded(self, write: Callable, backend, name: str, method: str) -> Callable:

        def guarded(*args, **kwargs):
            try:
                return write(*args, **kwargs)
            except OSError as error:
                self._report(f'{name}.{method}', _written_by(backend, name, method, args, kwargs),
                             error)

        guarded._fcn_write_guard = True
        return guarded

    def _guard_log_files(self, logger) -> None:
        """Each text log file's stream reports a failed write once (on the logger's other
        handlers: the console) and drops it, instead of Python's logging printing a traceback
        for every line (and mmengine's direct writes of the weights' init info stopping the
        run)."""
        for handler in getattr(logger, 'handlers', None) or []:
            stream = getattr(handler, 'stream', None)
            if not isinstance(handler, logging.FileHandler) or stream is None or isinstance(
                    stream, _GuardedStream):
                continue
            handler.stream = _GuardedStream(stream, handler.baseFilename, logger, self)


def _written_by(backend, name: str, method: str, args: tuple, kwargs: dict) -> str:
    """What a vis backend's ``method`` writes, naming the files where known (mmengine's
    ``LocalVisBackend``: ``scalars.json`` and the ``file_path`` it is given)."""
    save_dir = getattr(backend, '_save_dir', None)
    if 'scalar' not in method:
        return f'the images of the {name} vis backend' + (f' in {save_dir}' if save_dir else '')
    files = [getattr(backend, '_scalar_save_file', None)]
    file_path = kwargs.get('file_path', args[2] if len(args) > 2 else None)
    if file_path and save_dir:
        files.append(osp.join(save_dir, file_path))
    files = [f for f in files if f]
    where = ', '.join(files) if files else (f'in {save_dir}' if save_dir else '')
    return f'the scalars of the {name} vis backend' + (f' ({where})' if where else '')


class _GuardedStream:
    """A log file's stream whose failed writes (``OSError``) are reported once and dropped."""

    def __init__(self, stream, path: str, logger, hook: RankZeroLoggerHook) -> None:
        self._stream, self._path, self._logger, self._hook = stream, path, logger, hook

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as error:
            self._failed(error)
            return 0

    def flush(self) -> None:
        self._call('flush')

    def close(self) -> None:
        self._call('close')

    def __getattr__(self, name: str):
        return getattr(self._stream, name)

    def _call(self, method: str) -> None:
        try:
            getattr(self._stream, method)()
        except OSError as error:
            self._failed(error)

    def _failed(self, error: OSError) -> None:
        key = f'log:{self._path}'
        if key in self._hook._reported:
            return
        self._hook._reported.add(key)
        reason = error.strerror or str(error) or type(error).__name__
        code = f'[Errno {error.errno}] ' if error.errno else ''
        text = (f'{type(self._hook).__name__}: could not write the log file {self._path}: '
                f'{type(error).__name__}: {code}{reason}. The run goes on, its log lines on the '
                'console only while the file cannot be written (not reported again).')
        record = self._logger.makeRecord(self._logger.name, logging.WARNING, __file__, 0, text, (),
                                         None)
        for handler in self._logger.handlers:
            if not isinstance(handler, logging.FileHandler):
                handler.handle(record)
