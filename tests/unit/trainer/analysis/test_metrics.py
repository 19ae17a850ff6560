"""trainer.analysis.metrics against slow float64 references written here with numpy/scipy."""

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from trainer.analysis import metrics

RTOL = 1e-6


def ref_entropy(V: np.ndarray) -> float:
    sigma = sum(np.outer(v, v) for v in V) / len(V)
    rho = sigma / np.trace(sigma)
    lam = scipy.linalg.eigh(rho, eigvals_only=True)
    return float(-sum(x * math.log(x) for x in lam if x > 1e-300))


def test_entropy_matches_reference_and_streams():
    rng = np.random.default_rng(0)
    V = rng.normal(size=(300, 24)) @ rng.normal(size=(24, 24)) + 0.5  # correlated, not centred
    want = ref_entropy(V)
    t = torch.from_numpy(V)
    assert metrics.von_neumann_entropy(t) == pytest.approx(want, rel=RTOL)
    assert metrics.von_neumann_entropy(t, batch_size=7) == pytest.approx(want, rel=RTOL)
    assert metrics.von_neumann_entropy(iter(t.split(41))) == pytest.approx(want, rel=RTOL)
    # float32 input is accumulated in float64
    assert metrics.von_neumann_entropy(t.float()) == pytest.approx(want, rel=1e-4)


def test_entropy_extremes():
    # rank one -> 0; isotropic (orthonormal rows, n = d) -> ln d
    v = torch.randn(1, 16, dtype=torch.float64)
    rank_one = v.repeat(50, 1) * torch.rand(50, 1, dtype=torch.float64)
    assert metrics.von_neumann_entropy(rank_one) == pytest.approx(0, abs=1e-9)
    q, _ = torch.linalg.qr(torch.randn(16, 16, dtype=torch.float64))
    assert metrics.von_neumann_entropy(q) == pytest.approx(math.log(16), rel=1e-9)
    with pytest.raises(ValueError):
        metrics.von_neumann_entropy(torch.zeros(4, 3))


def ref_matching_pursuit(v: np.ndarray, W: np.ndarray, k: int, absolute: bool):
    D = W / np.linalg.norm(W, axis=1, keepdims=True)
    r = v.copy()
    ids, cs = [], []
    for _ in range(k):
        scores = [float(np.dot(d, r)) for d in D]
        key = [abs(s) for s in scores] if absolute else scores
        j = int(np.argmax(key))
        ids.append(j)
        cs.append(scores[j])
        r = r - scores[j] * D[j]
    return ids, cs


@pytest.mark.parametrize("absolute", [False, True])
def test_matching_pursuit_matches_reference(absolute):
    rng = np.random.default_rng(1)
    W = rng.normal(size=(50, 12)) * rng.uniform(0.1, 3, size=(50, 1))  # unequal row norms
    V = rng.normal(size=(5, 12))
    Vt, Wt = torch.from_numpy(V), torch.from_numpy(W)
    ids, cs = metrics.matching_pursuit(Vt, Wt, 6, absolute=absolute, chunk=2)
    assert ids.shape == cs.shape == (5, 6)
    for i in range(5):
        want_ids, want_cs = ref_matching_pursuit(V[i], W, 6, absolute)
        assert ids[i].tolist() == want_ids
        np.testing.assert_allclose(cs[i].numpy(), want_cs, rtol=RTOL)
    one_ids, _ = metrics.matching_pursuit(Vt[0], Wt, 6, absolute=absolute)
    assert one_ids.tolist() == ids[0].tolist() and one_ids.shape == (6,)


def test_matching_pursuit_recovers_sparse_combination_of_orthogonal_atoms():
    torch.manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(64, 64, dtype=torch.float64))
    W = q[:40] * torch.linspace(0.5, 4.0, 40, dtype=torch.float64)[:, None]  # orthogonal rows, scaled
    atoms = [31, 4, 17, 9]
    coeffs = [5.0, 3.0, 2.0, 1.0]
    v = sum(c * q[a] for a, c in zip(atoms, coeffs, strict=True))
    ids, cs = metrics.matching_pursuit(v, W, 4)
    assert ids.tolist() == atoms  # largest coefficient first
    np.testing.assert_allclose(cs.numpy(), coeffs, rtol=1e-9)
    # mixed signs need |<w, r>|
    v2 = 5.0 * q[3] - 4.0 * q[8] + 1.5 * q[20]
    ids2, cs2 = metrics.matching_pursuit(v2, W, 3, absolute=True)
    assert ids2.tolist() == [3, 8, 20]
    np.testing.assert_allclose(cs2.numpy(), [5.0, -4.0, 1.5], rtol=1e-9)


def ref_threshold(s: np.ndarray, kind: str, value: float) -> float:
    if kind == "relative":
        return s.min() + value * (s.max() - s.min())
    if kind == "mean_std":
        return s.mean() + value * s.std()
    return value


def ref_align_and_cos(tokens, text, gt, kind, value):
    ious, coss = [], []
    for b in range(len(tokens)):
        for p in range(len(text[b])):
            g = gt[b][p]
            if not g.any():
                continue
            t = text[b][p]
            s = np.array([np.dot(t, x) / (np.linalg.norm(t) * np.linalg.norm(x)) for x in tokens[b]])
            pred = s > ref_threshold(s, kind, value)
            union = np.logical_or(pred, g).sum()
            ious.append(np.logical_and(pred, g).sum() / union if union else 0.0)
            v = tokens[b][g].mean(0)
            coss.append(np.dot(v, t) / (np.linalg.norm(v) * np.linalg.norm(t)))
    return np.array(ious), np.array(coss)


@pytest.mark.parametrize("kind,value", [("relative", 0.5), ("relative", 0.7), ("mean_std", 1.0), ("mean_std", 0.3),
                                        ("absolute", 0.1)])
def test_alignment_and_cosine_match_reference(kind, value):
    rng = np.random.default_rng(2)
    B, L, M, D = 3, 4, 36, 16
    tokens = rng.normal(size=(B, M, D))
    text = rng.normal(size=(B, L, D))
    text[:, :2] = tokens[:, :6].mean(1, keepdims=True) + 0.3 * rng.normal(size=(B, 2, D))  # some signal
    gt = rng.random(size=(B, L, M)) < 0.3
    gt[1, 2] = False  # a label without tokens is skipped
    valid = np.ones((B, L), dtype=bool)
    valid[2, 3] = False  # padding
    want_iou, want_cos = ref_align_and_cos(tokens, [t[v] for t, v in zip(text, valid, strict=True)],
                                           [g[v] for g, v in zip(gt, valid, strict=True)], kind, value)
    rule = metrics.ThresholdRule(kind, value)
    args = (torch.from_numpy(tokens), torch.from_numpy(text), torch.from_numpy(gt), torch.from_numpy(valid))
    ious = metrics.patch_alignment_ious(*args, rule=rule)
    cos = metrics.region_cosines(*args)
    assert len(ious) == len(want_iou) == B * L - 2
    np.testing.assert_allclose(ious.numpy(), want_iou, rtol=RTOL)
    np.testing.assert_allclose(cos.numpy(), want_cos, rtol=RTOL)
    assert metrics.patch_alignment(*args, rule=rule) == pytest.approx(want_iou.mean(), rel=RTOL)
    assert metrics.mean_region_cosine(*args) == pytest.approx(want_cos.mean(), rel=RTOL)
    # one image, unbatched
    one = metrics.patch_alignment(args[0][0], args[1][0], args[2][0], rule=rule)
    assert one == pytest.approx(want_iou[:L].mean(), rel=RTOL)


def test_alignment_is_one_for_perfectly_aligned_tokens():
    # tokens of region p equal its text embedding, other tokens orthogonal -> every IoU is 1
    q, _ = torch.linalg.qr(torch.randn(8, 8, dtype=torch.float64))
    gt = torch.zeros(2, 16, dtype=torch.bool)
    gt[0, :5], gt[1, 9:12] = True, True
    tokens = q[7].repeat(16, 1)
    tokens[gt[0]], tokens[gt[1]] = q[0], q[1]
    text = torch.stack([q[0] * 3, q[1] * 0.5])
    assert metrics.patch_alignment(tokens, text, gt) == pytest.approx(1.0)
    assert metrics.mean_region_cosine(tokens, text, gt) == pytest.approx(1.0)
    assert math.isnan(metrics.patch_alignment(tokens, text, torch.zeros_like(gt)))
