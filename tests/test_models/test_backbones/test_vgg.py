"""The convolutionalized VGG backbone."""
import pytest
import torch
import torch.nn as nn

from fcn_plugin.models import VGG, CoordMap, FeatureMaps


def tiny(**kwargs):
    kwargs.setdefault('base_channels', 2)
    kwargs.setdefault('fc_channels', 8)
    return VGG(**kwargs)


@pytest.mark.parametrize('depth,convs', [(11, 8), (13, 10), (16, 13), (19, 16)])
def test_depths_have_vgg_layers(depth, convs):
    model = tiny(depth=depth)
    names = [n for n, m in model.named_children() if isinstance(m, nn.Conv2d)]
    assert len(names) == convs + 2 and names[0] == 'conv1_1' and names[-2:] == ['fc6', 'fc7']
    assert model.conv1_1.padding == (100, 100)
    assert model.fc6.kernel_size == (7, 7) and model.fc7.kernel_size == (1, 1)
    assert all(getattr(model, f'pool{i}').ceil_mode for i in range(1, 6))
    assert type(model.drop6) is nn.Dropout and model.drop6.p == 0.5  # element-wise


def test_reference_shapes_and_coord_maps():
    model = tiny(out_indices=(0, 1, 2, 3, 4, 5)).eval()
    out = model(torch.randn(2, 3, 500, 500))
    assert isinstance(out, FeatureMaps) and out.input_size == (500, 500)
    # 698 after conv1_1, then ceil pools: 349, 175, 88, 44, 22; fc6 7x7 -> 16
    assert [o.shape[-1] for o in out] == [349, 175, 88, 44, 22, 16]
    assert [o.shape[1] for o in out] == [2, 4, 8, 16, 16, 8]
    assert model.out_channels == (2, 4, 8, 16, 16, 8)
    assert out.coord_maps[2] == CoordMap.of(8, -95.5)
    assert out.coord_maps[3] == CoordMap.of(16, -91.5)
    assert out.coord_maps[5] == CoordMap.of(32, 12.5)


def test_one_pixel_input():
    out = tiny(out_indices=(5, ))(torch.randn(1, 3, 1, 1))
    assert out[0].shape == (1, 8, 1, 1)


def test_plain_padding_and_base_channels():
    model = VGG(depth=11, base_channels=4, first_conv_padding=1, with_fc=False, out_indices=(4, ))
    out = model(torch.randn(1, 3, 64, 48))
    assert out[0].shape == (1, 32, 2, 2) and out.coord_maps[0].stride == 32


@pytest.mark.parametrize('out_indices', [(), (6, ), (3, 2), (1, 1)])
def test_bad_out_indices(out_indices):
    with pytest.raises(ValueError, match='out_indices'):
        tiny(out_indices=out_indices)


def test_bad_depth():
    with pytest.raises(KeyError, match='depth=17'):
        tiny(depth=17)


def test_frozen_stages_stay_frozen_in_train_mode():
    model = tiny(frozen_stages=2)
    model.train()
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen and all(n.startswith(('conv1_', 'conv2_')) for n in frozen)
    assert len(frozen) == 8  # conv1_1/1_2/2_1/2_2, weight and bias
    assert model.conv3_1.weight.requires_grad


def test_stops_after_the_last_requested_output():
    model = tiny(out_indices=(1, ))
    calls = []
    model.fc6.register_forward_hook(lambda *args: calls.append('fc6'))
    model.conv3_1.register_forward_hook(lambda *args: calls.append('conv3_1'))
    out = model(torch.randn(1, 3, 16, 16))
    assert out[0].shape[1] == 4 and calls == []


def test_small_padding_takes_images_below_its_minimum():
    """conv1_1 padded by 16 and a 3x3 fc6 (the demo config) need 35 px: smaller images are
    extended with zeros at the bottom/right and keep their own size; larger ones are untouched."""
    model = tiny(first_conv_padding=16, fc6_kernel_size=3, out_indices=(2, 3, 5)).eval()
    assert model.min_input_size == 35
    with torch.no_grad():
        for size in ((1, 1), (34, 20), (3, 50)):
            x = torch.randn(1, 3, *size)
            out = model(x)
            assert out.input_size == size
            padded = torch.nn.functional.pad(x, (0, max(35 - size[1], 0), 0, max(35 - size[0], 0)))
            for a, b in zip(out, model(padded)):
                torch.testing.assert_close(a, b)
        assert tiny().min_input_size == 1  # the reference padding takes any size


def test_fast_conv_refuses_inputs_smaller_than_the_kernel_without_crashing():
    from fcn_plugin.models.layers.fast_conv import conv2d
    with pytest.raises(RuntimeError, match='Kernel size'):
        conv2d(torch.randn(1, 4, 2, 2), torch.randn(4, 4, 3, 3), None, 0)
