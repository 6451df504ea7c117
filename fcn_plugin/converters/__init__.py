"""The reference's weight formats and network, for the converters in tools/model_converters/.

- :mod:`.vgg_keys`: torchvision-layout ImageNet VGG state dicts to the :class:`VGG` backbone's.
- :mod:`.torchfcn_keys`: pytorch-fcn (torchfcn) FCN checkpoints to and from fcn_plugin's keys.
- :mod:`.caffe_proto`: a reader of Caffe ``.caffemodel`` files (no Caffe, no protobuf).
- :mod:`.plain_fcn`: the network as pytorch-fcn writes it (its state dict is a pytorch-fcn
  checkpoint), the yardstick of the tests and of ``tools/benchmark.py --compare-plain``.

Nothing here is registered; import the modules where they are needed.
"""
