"""The process's stop-signal handlers for :class:`~.preemption.PreemptionHook`, and DataLoader
workers that do not die of those signals (see :mod:`.preemption`).

Signal handlers belong to the process: one hook at a time has them installed (the one whose run
is active); the handlers only hand the signal to that hook, which records it. A DataLoader
worker (forked) blocks the stop signals and a thread of its own takes them: SIGTERM from its
main process (torch or multiprocessing stopping it) ends it as torch's handler would, any
other is ignored.
"""
import multiprocessing
import os
import signal
import threading
from typing import Dict


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f'signal {signum}'


# ------------------------------------------------------------------ the process's handlers
# Signal handlers belong to the process: one hook at a time has them (the one whose run is
# active); ``_previous`` holds what was there before the first of our installs.
_installed = dict(hook=None, pid=None, previous={})  # hook: a PreemptionHook


def install(hook) -> None:
    previous: Dict[int, object] = {}
    for signum in hook.signals:
        current = signal.getsignal(signum)
        if current is _handle:  # left by a run that ended with an exception
            current = _installed['previous'].get(signum, signal.SIG_DFL)
        previous[signum] = current
    for signum in hook.signals:
        signal.signal(signum, _handle)
    _installed.update(hook=hook, pid=os.getpid(), previous=previous)


def uninstall() -> None:
    """Restore the handlers found by the last install (where ours are still installed)."""
    previous, _installed['previous'] = _installed['previous'], {}
    _installed['hook'] = None
    for signum, handler in previous.items():
        if signal.getsignal(signum) is _handle:
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def _delegate(handler, signum: int, frame) -> None:
    """Do what ``handler`` (a previous handler) does with ``signum``."""
    if callable(handler):
        handler(signum, frame)
    elif handler != signal.SIG_IGN:  # SIG_DFL, or None (not installed from Python)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _handle(signum: int, frame) -> None:
    """The handler: record the signal for the active run; otherwise the previous handler."""
    if os.getpid() != _installed['pid']:  # a child forked during the run
        _delegate(_installed['previous'].get(signum, signal.SIG_DFL), signum, frame)
        return
    hook = _installed['hook']
    if hook is not None and hook.running(frame):
        hook.record(signum)
        return
    handler = _installed['previous'].get(signum, signal.SIG_DFL)
    uninstall()
    _delegate(handler, signum, frame)


_worker_guard = dict(pid=None)


def quiet_dataloader_worker(hook) -> None:
    """In a process multiprocessing just forked: if it is a DataLoader worker, block the stop
    signals and let a thread take them (see the module doc)."""
    target = getattr(multiprocessing.current_process(), '_target', None)
    if getattr(target, '__module__', None) != 'torch.utils.data._utils.worker':
        return
    if _worker_guard['pid'] == os.getpid():  # another hook's call did it
        return
    _worker_guard['pid'] = os.getpid()
    signals = set(hook.signals)
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)  # inherited by the worker's threads
    threading.Thread(
        target=_absorb_stop_signals,
        args=(signals, os.getppid()),
        name='fcn-plugin-stop-signals',
        daemon=True).start()


def _absorb_stop_signals(signals: set, parent: int) -> None:
    """A DataLoader worker's thread that takes the blocked stop signals: SIGTERM from the main
    process (torch, multiprocessing stopping the worker) ends the worker as torch's own
    handler would; any other is ignored (the main process stops its workers when it stops)."""
    while True:
        info = signal.sigwaitinfo(signals)
        if info.si_signo == signal.SIGTERM and info.si_pid == parent:
            os._exit(0)


def installed_hook():
    """The hook whose run has the handlers now (None if none)."""
    return _installed['hook']
