"""Tag text embedding = mean of the LLM input embeddings of its sub-tokens, without BOS."""

import torch

from trainer.models.text_embeddings import tag_embeddings, tag_token_ids
from trainer.models.tiny import tiny_tokenizer


def test_tag_ids_have_no_bos_and_several_subtokens():
    tok = tiny_tokenizer()
    ids = tag_token_ids(tok, "canyon wall")
    assert tok.bos_token_id not in ids
    assert tok.convert_ids_to_tokens(ids) == ["\u2581can", "yon", "\u2581wall"]


def test_mean_of_subtoken_embeddings_matrix_and_module():
    torch.manual_seed(0)
    embedding = torch.nn.Embedding(50, 8)
    ids = torch.tensor([[[3, 7, 9], [4, 0, 0], [0, 0, 0]]])
    mask = torch.tensor([[[True, True, True], [True, False, False], [False, False, False]]])
    w = embedding.weight.detach()
    expected = torch.stack([(w[3] + w[7] + w[9]) / 3, w[4], torch.zeros(8)])[None]
    assert torch.allclose(tag_embeddings(w, ids, mask), expected, atol=1e-6)
    assert torch.allclose(tag_embeddings(embedding, ids, mask), expected, atol=1e-6)
