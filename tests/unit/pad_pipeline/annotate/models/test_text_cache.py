"""The prompt-chunk encoding cache: each distinct row encoded once, least recently used evicted."""

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

from pad_pipeline.annotate.models.text_cache import CachingTextBackbone


class CountingEncoder(nn.Module):
    """Stands in for BERT: hidden state = f(ids, position in row), and counts the rows it encodes."""

    def __init__(self):
        super().__init__()
        self.rows = []
        self.calls = []  # rows per call

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, return_dict=None):
        self.rows.extend(input_ids.tolist())
        self.calls.append(len(input_ids))
        positions = torch.arange(input_ids.shape[1]).expand_as(input_ids)
        hidden = torch.stack([input_ids.float() * 10 + positions, token_type_ids.float()], dim=-1)
        return BaseModelOutput(last_hidden_state=hidden)


def _ids(*rows):
    return torch.tensor(rows)


def test_duplicate_rows_are_encoded_once_and_placed_back_in_order():
    enc = CountingEncoder()
    cache = CachingTextBackbone(enc, capacity=0)  # no memory across calls: dedupe within the batch only
    ids = _ids([1, 2, 0], [3, 4, 5], [1, 2, 0])
    out = cache(ids, None, torch.zeros_like(ids), None, return_dict=False)
    assert enc.rows == [[1, 2, 0], [3, 4, 5]]
    assert enc.calls == [1, 1]  # each new row alone: its encoding does not depend on the rows beside it
    torch.testing.assert_close(out[0], enc(ids, token_type_ids=torch.zeros_like(ids)).last_hidden_state)
    cache(ids, None, torch.zeros_like(ids), None)
    assert len(enc.rows) == 2 + 3 + 2  # capacity 0 remembers nothing (+3: the reference call above)


def test_rows_seen_before_are_reused_until_evicted():
    enc = CountingEncoder()
    cache = CachingTextBackbone(enc, capacity=2)
    a, b, c = [1, 1], [2, 2], [3, 3]
    cache(_ids(a, b))
    cache(_ids(b, a))
    assert enc.rows == [a, b] and (cache.stats.rows, cache.stats.encoded) == (4, 2)
    cache(_ids(c))  # evicts the least recently used: a was used after b, so b goes
    cache(_ids(a))
    assert enc.rows == [a, b, c]
    cache(_ids(b))
    assert enc.rows == [a, b, c, b] and cache.stats.reuse == 1 - 4 / 7
    assert cache.stats.as_dict() == {"rows": 7, "encoded": 4, "reuse": round(1 - 4 / 7, 4)}


def test_token_types_and_padding_are_part_of_the_key():
    enc = CountingEncoder()
    cache = CachingTextBackbone(enc, capacity=8)
    cache(_ids([5, 6]), None, _ids([0, 0]))
    out = cache(_ids([5, 6]), None, _ids([0, 1]))
    cache(_ids([5, 6, 0]), None, _ids([0, 0, 0]))
    assert enc.rows == [[5, 6], [5, 6], [5, 6, 0]]
    assert out.last_hidden_state[0, 1, 1].item() == 1.0
