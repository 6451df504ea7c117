from .vgg import VGG

__all__ = ['VGG']
