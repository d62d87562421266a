"""ocrsft: fine-tune OCR vision-language models on PaddlePaddle."""
__version__ = "0.1.0"
