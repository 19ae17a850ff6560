"""A trained model written out: PAD's own format (`pad_format`), transformers Llava (`hf`), LLaVA's own (`llava`),
from a run folder (`from_run`, `write`); `formats` names them for the CLI and the manifests."""
