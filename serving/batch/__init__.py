"""Offline batch inspection at scale: worker processes decode, the main process infers in batches.

`pipeline` decodes and preprocesses chunks of images in worker processes (a bounded number in
flight, so memory stays flat however many images there are) while the main process runs batched
ONNX Runtime inference; `output` keeps the rows resumable and writes CSV, JSON Lines or Parquet;
`run` ties them together with progress and a summary; `bench` measures the engine against the
in-process ceiling.
"""
