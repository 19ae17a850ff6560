"""Annotation stages: each built from its config, loads its model once in `setup()`, and maps a batch
(a dict of equal-length columns) to a batch with more columns. No Ray here: `pad_pipeline.ray.annotator_actor`
runs the chain inside actors."""
