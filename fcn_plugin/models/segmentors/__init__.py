from .autocast_encoder_decoder import PRECISIONS, AutocastEncoderDecoder

__all__ = ['AutocastEncoderDecoder', 'PRECISIONS']
