"""Everything about pixels: preprocessing, data, training, evaluation, export, OCR."""
