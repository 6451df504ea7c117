"""Shared test set-up: the plugin registered and mmseg as mmengine's default scope."""
import pytest
from mmengine.registry import init_default_scope

import fcn_plugin  # noqa: F401  (registers the plugin's components)


@pytest.fixture(autouse=True, scope='session')
def mmseg_default_scope():
    init_default_scope('mmseg')


@pytest.fixture
def assert_matches_plain():
    """``check(model, plain, sizes)``: an mmseg FCN's ``predict`` logits against a
    :class:`~fcn_plugin.utils.plain_fcn.PlainFCN`'s at each ``(H, W)``: within 1e-4 of the logit
    range, same argmax."""
    import torch

    def check(model, plain, sizes):
        for size in sizes:
            x = torch.randn(1, 3, *size) * 50
            with torch.no_grad():
                ours = model.predict(x)[0].seg_logits.data
                theirs = plain(x)[0]
            assert float((ours - theirs).abs().max() / theirs.abs().max()) < 1e-4, size
            assert torch.equal(ours.argmax(0), theirs.argmax(0)), size

    return check
