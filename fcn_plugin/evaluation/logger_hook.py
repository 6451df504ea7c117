"""mmengine's ``LoggerHook`` with the test-metrics JSON written by one process only."""
from typing import Dict, Optional

from mmengine.dist import is_main_process
from mmengine.hooks import LoggerHook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class RankZeroLoggerHook(LoggerHook):
    """:class:`mmengine.hooks.LoggerHook`, except that after testing only rank 0 writes
    ``<work_dir>/<timestamp>/<timestamp>.json``.

    mmengine 0.10.7 dumps that file from every rank to the same path: with ``dist_test.sh`` the
    concurrent writes (of slightly different lengths: each rank has its own timings) can leave
    invalid JSON. Our configs select it as ``default_hooks.logger`` (same arguments as
    ``LoggerHook``); mmengine's ``LoggerHook`` stays as it is for every other config.
    """

    def after_test_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        if is_main_process():
            super().after_test_epoch(runner, metrics)
            return
        _, log_str = runner.log_processor.get_log_after_epoch(
            runner, len(runner.test_dataloader), 'test', with_non_scalar=True)
        runner.logger.info(log_str)
