"""The reference's weight formats and network, for :mod:`fcn_plugin.apis.convert_weights` (and
its tools in tools/model_converters/).

- :mod:`.vgg_keys`: torchvision-layout ImageNet VGG state dicts to the :class:`VGG` backbone's.
- :mod:`.torchfcn_keys`: pytorch-fcn (torchfcn) FCN checkpoints to and from fcn_plugin's keys.
- :mod:`.caffe_proto`: a reader of Caffe ``.caffemodel`` files (no Caffe, no protobuf).
- :mod:`.caffe_nets`: the reference Caffe nets (FCNs, the VGG16 classifier) to state dicts.
- :mod:`.plain_fcn`: the network as pytorch-fcn writes it (its state dict is a pytorch-fcn
  checkpoint), the yardstick of the tests and of ``tools/benchmark.py --compare-plain``.

Nothing here is registered; import the modules where they are needed.
"""


class ConversionError(Exception):
    """A file that is not one of the supported networks or formats (the message names it)."""
