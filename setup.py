from setuptools import find_packages, setup

setup(
    name='fcn_plugin',
    version='0.1.0',
    description='The original VGG16 FCN-32s/16s/8s (Long, Shelhamer, Darrell) for MMSegmentation',
    license='Apache-2.0',
    packages=find_packages(include=['fcn_plugin', 'fcn_plugin.*']),
    python_requires='>=3.8',
    install_requires=['mmsegmentation>=1.2.2', 'mmengine>=0.10', 'mmcv>=2.0.0rc4,<2.2.0',
                      'scipy', 'tqdm', 'prettytable'],
    # tools/deployment/pytorch2onnx.py: torch's ONNX exporter (onnxscript) and the check
    # with onnxruntime; verified with torch 2.13.0, numpy 1.26 (pip install -e .[onnx])
    extras_require={'onnx': ['onnx==1.23.2', 'onnxruntime==1.32.0', 'onnxscript==0.7.2'],
                    'tensorboard': ['tensorboard']},  # TensorboardVisBackend (README)
)
