"""The constants every part of the trainer agrees on (as LLaVA's `llava/constants.py`).

`IMAGE_TOKEN` is the placeholder an image takes in a conversation's text; `IMAGE_TOKEN_INDEX` marks, in token
ids, where an image's vision tokens are spliced in (LLaVA's -200, never a real vocabulary id); `IGNORE_INDEX`
is the label of positions that take no loss (PyTorch's cross-entropy default).
"""

IMAGE_TOKEN = "<image>"
IMAGE_TOKEN_INDEX = -200
IGNORE_INDEX = -100
