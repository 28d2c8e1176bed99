"""Training and export: data loading, augmentation, models, training, PatchCore, class-activation maps,
ONNX export, the accuracy benchmark, and the seven-segment digit reader's training.

Everything here needs torch and torchvision, so the `train` extra (`pip install 'lineinspect[train]'`).
The runtime beside it in `vision` (preprocessing, ONNX inference, metadata, metrics, calibration) and
all of serving import none of it.
"""
