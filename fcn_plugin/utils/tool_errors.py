"""The tools' last word on an error a user can cause: one short line on stderr, printed after
everything else (the runner's config and environment dump, the log), and exit status 1.

:func:`run_tool` runs a tool's ``main``. Errors a user can cause (:func:`is_user_error`: every
exception class of ``fcn_plugin`` -- ``ConfigError``, ``BadSampleError``, ``BadDatasetError``,
the checkpoint errors ... -- missing or unreadable files, and a file system that refuses a write:
read-only, full, over quota) end the tool with ``<tool>: error: <ErrorClass>: <message>`` as the
last line on stderr; the traceback goes to the run's log file when there is one (else it is
printed before that line, except for a refused write, whose message names the path, and a run
stopped by a signal). An error with an ``exit_code`` attribute (a run stopped by a signal: 128 +
its number, as a shell reports a process the signal ended) exits with that code. Other errors
(bugs) propagate with their traceback as usual.
"""
import errno
import logging
import re
import sys
import traceback
from typing import Callable, Optional

from .config_vars import ConfigError

# missing data, checkpoints, config files; a symlink loop (OSError ELOOP) is reported as such
# by fcn_plugin's checks before any of these is raised
FILE_ERRORS = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)
# a file system that refuses a write: read-only, full, over quota
REFUSED_WRITES = (errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES)


def is_user_error(error: BaseException) -> bool:
    """Whether ``error`` is one a user can cause and fix: a class of ``fcn_plugin`` (or derived
    from one), a missing/unreadable file or a refused write."""
    return isinstance(error, FILE_ERRORS) or (isinstance(error, OSError)
                                              and error.errno in REFUSED_WRITES) or any(
                                                  cls.__module__.split('.')[0] == 'fcn_plugin'
                                                  for cls in type(error).__mro__)


def user_message(error: BaseException) -> str:
    """``'<ErrorClass>: <message>'``, without the wrapping of mmengine's registry
    (``class `X` in path.py: ``) and, for an error re-raised from a DataLoader worker, its
    original message instead of the worker's traceback."""
    text = str(error).strip()
    if 'Original Traceback' in text:  # torch re-raises worker errors with their traceback
        lines = [line for line in text.splitlines() if line.strip()]
        text = re.sub(r'^[\w.]+(Error|Exception): ', '', lines[-1].strip())
    text = re.sub(r'class `\w+` in [\w/.\\-]+\.py: ', '', text)
    return f'{type(error).__name__}: {text or repr(error)}'


def _logger_names() -> set:
    from mmengine.logging import MMLogger
    return set(MMLogger._instance_dict)


def _log_traceback(error: BaseException, before: set) -> Optional[str]:
    """Write the traceback to the log files of the newest mmengine logger created while the
    tool ran (``before``: the logger names that existed before); their path or None."""
    from mmengine.logging import MMLogger
    new = [name for name in MMLogger._instance_dict if name not in before]
    if not new:  # no runner built: no log file of this run
        return None
    logger = MMLogger.get_instance(new[-1])
    files = [h for h in logger.handlers if isinstance(h, logging.FileHandler)]
    if not files:
        return None
    text = ''.join(traceback.format_exception(type(error), error, error.__traceback__))
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 0, text, (), None)
    for handler in files:
        handler.handle(record)
        handler.flush()
    return files[0].baseFilename


def run_tool(main: Callable, prog: str, *args, **kwargs):
    """``main(*args, **kwargs)``; a user error ends the process with one final line on stderr,
    ``<prog>: error: <ErrorClass>: <message>``, and exit status 1."""
    before = _logger_names()
    try:
        return main(*args, **kwargs)
    except Exception as error:
        if not is_user_error(error):
            raise
        log_file = _log_traceback(error, before)
        sys.stdout.flush()
        # a refused write's message names the path, a config error the key; a stopped run is
        # no failure: no traceback
        quiet = isinstance(error, OSError) and error.errno in REFUSED_WRITES or hasattr(
            error, 'exit_code') or isinstance(error, ConfigError)
        if log_file is None and not quiet:
            traceback.print_exception(type(error), error, error.__traceback__)
        where = f' (traceback in {log_file})' if log_file else ''
        print(f'{prog}: error: {user_message(error)}{where}', file=sys.stderr, flush=True)
        sys.exit(getattr(error, 'exit_code', 1))
