"""The benchmarks of `lineinspect bench`: the service (`serve`, `soak`, started by `local_server`) and offline
batch inspection (`inspect`). `bench accuracy` and `bench ocr` live with what they measure (vision.training,
vision.ocr)."""
