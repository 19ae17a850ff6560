"""RAM and RAM++ image tagging, our own inference code for the official checkpoints.

swin.py (image encoder), tagging_head.py (query-to-label head), model.py (the networks), checkpoint.py
(key map + strict loader), tiny.py (tiny random twins for tests) and tagger.py (the wrapper and the
registry's builders). The tag list, thresholds and tag choice are the taggers' shared
`pad_pipeline.annotate.models.vocabulary`.
"""
