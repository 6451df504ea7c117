"""A run asked to stop (SIGTERM, SIGUSR1, SIGINT) finishes the current iteration, saves the
iteration reached and raises TrainingInterrupted (exit status 128 + the signal); --resume from
there ends bit-identical to a run that never stopped (PreemptionHook). In process, signalling
itself; then tools/train.py's last line and exit status; then a 2-rank gloo job of
tools/dist_train.sh whose launcher gets SIGTERM."""
import multiprocessing
import os
import os.path as osp
import signal
import subprocess
import time
import uuid

import pytest
import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

import fcn_plugin  # noqa: F401
from fcn_plugin.runtime import TrainingInterrupted, is_complete_checkpoint
from fcn_plugin.utils.tool_errors import run_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)
ITERS, STOP_AT = 8, 5


@HOOKS.register_module(force=True)
class SignalAt(Hook):
    """Sends ``signal`` to this process during iteration ``at`` (before its train step), or
    before validation batch 0 after iteration ``at`` (``in_validation``); also to the
    process's DataLoader workers (``workers``: as Ctrl-C reaches the whole process group); and
    ``then`` (a second signal) from inside the checkpoint save that follows."""
    priority = 'HIGHEST'

    def __init__(self, at, signal, in_validation=False, workers=False, then=None):
        self.at, self.signal, self.in_validation = at, signal, in_validation
        self.workers, self.then = workers, then
        self.sent_at = None
        self.signalled = []
        self.alive_after = None  # whether the signalled workers lived to the iteration's end

    def _send(self):
        if self.workers:  # from another process, as the terminal, torchrun or Slurm
            self.signalled = multiprocessing.active_children()
            subprocess.run(['kill', f'-{self.signal}', *(str(p.pid) for p in self.signalled)],
                           check=True)
        self.sent_at = time.monotonic()
        os.kill(os.getpid(), self.signal)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if not self.in_validation and runner.iter + 1 == self.at:
            self._send()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if self.signalled and self.alive_after is None:
            time.sleep(0.5)  # a worker that the signal ends is gone by now
            self.alive_after = [p.is_alive() for p in self.signalled]

    def before_val_iter(self, runner, batch_idx, data_batch=None):
        if self.in_validation and runner.iter == self.at and batch_idx == 0:
            self._send()

    def before_save_checkpoint(self, runner, checkpoint):
        if self.then and self.sent_at is not None:
            os.kill(os.getpid(), self.then)
            self.then = None


@HOOKS.register_module(force=True)
class FailAt(Hook):
    """Raises after iteration ``at`` (a run that fails: no after_train)."""

    def __init__(self, at):
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.at:
            raise ZeroDivisionError('a run that fails')


def handlers():
    return {s: signal.getsignal(s) for s in STOP_SIGNALS}


def same_state(a, b):
    """Weights and SGD momentum of two checkpoints, bit for bit."""
    assert a['state_dict'].keys() == b['state_dict'].keys()
    weights = all(torch.equal(a['state_dict'][k], b['state_dict'][k]) for k in a['state_dict'])
    momentum = [
        torch.equal(x['momentum_buffer'], y['momentum_buffer'])
        for x, y in zip(a['optimizer']['state'].values(), b['optimizer']['state'].values())
    ]
    return weights and momentum and all(momentum)


@pytest.fixture(scope='module')
def data(tmp_path_factory, make_voc):
    root = tmp_path_factory.mktemp('preemption') / 'data'
    make_voc(root)
    return root


@pytest.fixture(scope='module')
def run(data, tiny_cfg, build_runner):
    """``run(work_dir, hook=None, resume=False, **overrides)``: train the tiny config to
    ITERS (checkpoints every 3, validation every 2) with ``hook`` added; the runner and the
    TrainingInterrupted it raised (or None). DataLoader workers are shut down."""

    def train(work_dir, hook=None, resume=False, **overrides):
        cfg = tiny_cfg(
            data,
            work_dir,
            max_iters=ITERS,
            lr=1e-4,
            ckpt_interval=3,
            val_interval=2,
            custom_hooks=[hook] if hook else None,
            resume=resume,
            **overrides)
        runner = build_runner(cfg)
        stopped = None
        try:
            runner.train()
        except TrainingInterrupted as error:
            stopped = error
        finally:
            iterator = getattr(runner.train_loop, 'dataloader_iterator', None)
            while iterator is not None and not hasattr(iterator, '_shutdown_workers'):
                iterator = vars(iterator).get('_iterator')
            if iterator is not None:
                iterator._shutdown_workers()
        return runner, stopped

    return train


@pytest.fixture(scope='module')
def straight(tmp_path_factory, run, state_dict_of):
    """The unbroken run's final checkpoint."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        work = tmp_path_factory.mktemp('straight')
        run(work)
        return state_dict_of(work / f'iter_{ITERS}.pth')
    finally:
        torch.set_num_threads(threads)


def checkpoints(work):
    return sorted(n for n in os.listdir(work) if n.endswith('.pth'))


def last_checkpoint(work):
    with open(work / 'last_checkpoint') as f:
        return f.read().strip()


@pytest.mark.usefixtures('one_thread')
@pytest.mark.parametrize('signum', STOP_SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_signal_stops_after_the_iteration_with_it_saved(tmp_path, signum, run, straight,
                                                          state_dict_of):
    """Signalled during iteration 5 (checkpoints every 3): the run stops after iteration 5,
    with iter_5.pth complete and named by last_checkpoint, exit code 128 + the signal, the
    process's handlers back as they were (no KeyboardInterrupt on SIGINT); --resume then ends
    bit-identical to the unbroken run."""
    before = handlers()
    work = tmp_path / 'work'
    runner, stopped = run(work, dict(type='SignalAt', at=STOP_AT, signal=int(signum)))
    assert stopped is not None and stopped.exit_code == 128 + signum
    assert stopped.iteration == STOP_AT and runner.iter == STOP_AT - 1  # inside iteration 5
    assert checkpoints(work) == ['iter_3.pth', f'iter_{STOP_AT}.pth']
    assert stopped.checkpoint == last_checkpoint(work) == str(work / f'iter_{STOP_AT}.pth')
    assert is_complete_checkpoint(stopped.checkpoint)
    assert str(stopped).startswith(f'{signal.Signals(signum).name} received: training stopped '
                                   f'after iteration {STOP_AT}; checkpoint {stopped.checkpoint} '
                                   'saved. Continue with: python tools/train.py ')
    assert str(stopped).endswith(f' --work-dir {work} --resume')
    assert handlers() == before
    if signum != signal.SIGTERM:
        return
    resumed, stopped = run(work, resume=True)
    assert stopped is None and resumed.iter == ITERS
    assert resumed.train_loop.skipped_batches == STOP_AT
    assert same_state(straight, state_dict_of(work / f'iter_{ITERS}.pth'))


@pytest.mark.usefixtures('one_thread')
def test_a_signal_during_validation_stops_there(tmp_path, run, straight, state_dict_of):
    """Signalled in the validation after iteration 4: it stops after that validation batch
    (not after the whole validation), saves iter_4.pth, and the resumed run ends as the
    unbroken one."""
    work = tmp_path / 'work'
    runner, stopped = run(
        work, dict(type='SignalAt', at=4, signal=int(signal.SIGTERM), in_validation=True))
    assert stopped is not None and stopped.exit_code == 143 and stopped.iteration == 4
    assert 'during the validation after iteration 4' in str(stopped)
    assert checkpoints(work) == ['iter_3.pth', 'iter_4.pth']
    assert last_checkpoint(work) == str(work / 'iter_4.pth')
    resumed, stopped = run(work, resume=True)
    assert stopped is None and resumed.iter == ITERS
    assert same_state(straight, state_dict_of(work / f'iter_{ITERS}.pth'))


@pytest.mark.usefixtures('one_thread')
def test_a_second_signal_during_the_save_is_only_recorded(tmp_path, run, state_dict_of):
    """SIGTERM in iteration 5, then Ctrl-C from inside the checkpoint save: the save
    completes, the run ends as SIGTERM asked (143), the Ctrl-C recorded and ignored."""
    before = handlers()
    work = tmp_path / 'work'
    hook = dict(type='SignalAt', at=STOP_AT, signal=int(signal.SIGTERM), then=int(signal.SIGINT))
    runner, stopped = run(work, hook)
    assert stopped is not None and stopped.exit_code == 143
    preemption = next(h for h in runner.hooks if type(h).__name__ == 'PreemptionHook')
    assert preemption.ignored == [signal.SIGINT]
    assert is_complete_checkpoint(work / f'iter_{STOP_AT}.pth')
    state_dict_of(work / f'iter_{STOP_AT}.pth')  # loads
    assert handlers() == before


@pytest.mark.usefixtures('one_thread')
@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM], ids=['SIGINT', 'SIGTERM'])
def test_dataloader_workers_survive_the_signal(tmp_path, signum, run):
    """Ctrl-C reaches the DataLoader workers too (the terminal signals the process group), so
    do torchrun's SIGTERM (its rank's process group) and Slurm's (every process of the step):
    the workers block them, so none dies under the main process (a worker killed by SIGTERM
    would make torch raise in the main process, before it saves), which stops after the
    iteration with it saved."""
    work = tmp_path / 'work'
    hook = dict(type='SignalAt', at=STOP_AT, signal=int(signum), workers=True)
    runner, stopped = run(
        work, hook, train_dataloader=dict(num_workers=2, persistent_workers=False))
    assert stopped is not None and stopped.exit_code == 128 + signum
    sender = next(h for h in runner.hooks if type(h).__name__ == 'SignalAt')
    assert sender.alive_after == [True, True]
    assert [p.exitcode for p in sender.signalled] == [0, 0]  # shut down by the main process
    assert is_complete_checkpoint(work / f'iter_{STOP_AT}.pth')


@pytest.mark.usefixtures('one_thread')
def test_without_a_checkpoint_hook_it_stops_and_says_so(tmp_path, run):
    work = tmp_path / 'work'
    hook = dict(type='SignalAt', at=2, signal=int(signal.SIGTERM))
    runner, stopped = run(work, hook, default_hooks=dict(checkpoint=None))
    assert stopped is not None and stopped.exit_code == 143 and stopped.checkpoint is None
    assert ('training stopped after iteration 2; nothing was saved: the run has no checkpoint '
            'hook; no checkpoint exists. Continue with: ') in str(stopped)
    assert checkpoints(work) == []


def test_a_signal_after_a_failed_run_goes_to_the_previous_handler(tmp_path, run):
    """A run that ended with another exception (no after_train) leaves no handler that
    swallows signals: Ctrl-C raises KeyboardInterrupt again, and the handlers are restored."""
    before = handlers()
    with pytest.raises(ZeroDivisionError):
        run(tmp_path / 'work', dict(type='FailAt', at=2))
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)
    assert handlers() == before


def test_train_tool_ends_with_the_command_to_continue(tmp_path, data, tiny_cfg, load_tool, capsys,
                                                      one_thread):
    """tools/train.py: exit status 143 and, as the last line, the signal, the checkpoint and
    the command that continues the run."""
    cfg = tiny_cfg(
        data,
        tmp_path / 'work',
        max_iters=4,
        ckpt_interval=100,
        val_interval=100,
        custom_hooks=[dict(type='SignalAt', at=2, signal=int(signal.SIGTERM))])
    config = str(tmp_path / 'tiny.py')
    cfg.dump(config)
    argv = [config, '--cfg-options', f'experiment_name=preempt_{uuid.uuid4().hex[:8]}']
    with pytest.raises(SystemExit) as stop:
        run_tool(load_tool('train').main, 'tools/train.py', argv)
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert stop.value.code == 143, last
    work = tmp_path / 'work'
    assert last.startswith(
        'tools/train.py: error: TrainingInterrupted: SIGTERM received: training stopped after '
        f'iteration 2; checkpoint {work / "iter_2.pth"} saved. Continue with: python '
        f'tools/train.py {config} --work-dir {work} --resume'), last
    assert is_complete_checkpoint(work / 'iter_2.pth')
