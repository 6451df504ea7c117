"""mmengine's ``LoggerHook`` with the test-metrics JSON written by one process only."""
from typing import Dict, Optional

from mmengine.dist import is_main_process
from mmengine.hooks import LoggerHook as MMEngineLoggerHook
from mmseg.registry import HOOKS


@HOOKS.register_module(name='LoggerHook')
class RankZeroLoggerHook(MMEngineLoggerHook):
    """:class:`mmengine.hooks.LoggerHook`, except that after testing only rank 0 writes
    ``<work_dir>/<timestamp>/<timestamp>.json``.

    mmengine 0.10.7 dumps that file from every rank to the same path: with ``dist_test.sh`` the
    concurrent writes (of slightly different lengths: each rank has its own timings) can leave
    invalid JSON. Registered in mmseg's scope as ``LoggerHook``, so every mmseg config's
    ``default_hooks.logger`` gets it once ``fcn_plugin`` is imported; nothing else changes.
    """

    def after_test_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        if is_main_process():
            super().after_test_epoch(runner, metrics)
            return
        _, log_str = runner.log_processor.get_log_after_epoch(
            runner, len(runner.test_dataloader), 'test', with_non_scalar=True)
        runner.logger.info(log_str)
