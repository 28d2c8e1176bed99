"""Everything about pixels: preprocessing, ONNX inference, evaluation, calibration, OCR.

Data, training and export, which need torch (the `train` extra), are in `vision.training`.
"""
