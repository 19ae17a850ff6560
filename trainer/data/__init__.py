"""Data of stage 1: PAD shards -> per-sample tensors (image, caption ids, region token masks) -> batches."""
