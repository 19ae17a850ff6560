"""The paper's measurements of vision-token alignment as pure tensor functions (`pad analyze` uses them).

Notation: V is a set of embeddings, one per row (n, d); W the LLM input embedding matrix (vocab, d);
for one image, `tokens` [M, D] are its projected vision tokens on a g x g grid (M = g^2, row-major),
`text` [L, D] the text embeddings t_p of its L labels (paper eq. 2) and `gt_masks` bool [L, M] the tokens
each label's mask covers (the half-area rule of `trainer.data.patches.masks`). Every function also
takes a batch ([B, M, D], [B, L, D], [B, L, M]) with `valid` bool [B, L] marking real labels.

- Von Neumann entropy (Definition 3.1): Sigma = (1/n) sum_i v_i v_i^T (uncentred), rho = Sigma / tr(Sigma),
  H(V) = -sum_j lambda_j ln lambda_j over the eigenvalues of rho (0 ln 0 = 0). `SecondMoment` streams
  Sigma in float64 over batches, so n can be in the hundreds of thousands; the eigenvalues come from the
  d x d matrix (float64 `eigvalsh`, fine for d up to 8192).
- Matching pursuit (Algorithm 1): the dictionary is W with every row scaled to unit L2 norm; step t picks
  w_t = argmax_w <w, r_{t-1}> (signed, as in the paper; `absolute=True` uses |<w, r>|), c_t = <w_t, r_{t-1}>,
  r_t = r_{t-1} - c_t w_t, starting from r_0 = v.
- Align(V, W) (eqs. 3-4): s_{p,i} = cos(t_p, token_i); predicted mask P_p = {i : s_{p,i} > c_p} with the
  adaptive threshold c_p of a `ThresholdRule` (its kinds: the `THRESHOLD_RULES` registry); IoU(P_p, G_p)
  on the token grid; mean over labels.
- Cos Sim (Table 3): cos(v_p, t_p) with v_p the mean of the tokens in G_p; mean over labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import torch
from torch.nn import functional as F

from pad_pipeline.core.registry import Registry

# --------------------------------------------------------------------------------------- entropy

class SecondMoment:
    """Streaming uncentred second moment (1/n) sum v v^T of rows, accumulated in float64."""

    def __init__(self, dim: int, device: torch.device | str = "cpu"):
        self.sum = torch.zeros(dim, dim, dtype=torch.float64, device=device)
        self.count = 0

    def update(self, batch: torch.Tensor) -> None:
        """Add the rows of `batch` [..., d] (any leading shape)."""
        rows = batch.reshape(-1, batch.shape[-1]).to(self.sum.device, torch.float64)
        self.sum.addmm_(rows.T, rows)
        self.count += rows.shape[0]

    def matrix(self) -> torch.Tensor:
        if self.count == 0:
            raise ValueError("no embedding was added")
        return self.sum / self.count

    def entropy(self) -> float:
        return entropy_of_second_moment(self.matrix())


def entropy_of_second_moment(sigma: torch.Tensor) -> float:
    """H of the density matrix rho = sigma / tr(sigma) (natural log)."""
    sigma = sigma.to(torch.float64)
    sigma = (sigma + sigma.T) / 2  # exact symmetry for eigvalsh; accumulation is symmetric up to rounding
    trace = torch.trace(sigma)
    if not trace > 0:
        raise ValueError("the embeddings are all zero; the entropy is undefined")
    lam = torch.linalg.eigvalsh(sigma / trace).clamp(min=0.0)  # tiny negative rounding -> 0
    nz = lam[lam > 0]
    return float(-(nz * nz.log()).sum())


def von_neumann_entropy(V: torch.Tensor | Iterable[torch.Tensor], batch_size: int = 65536) -> float:
    """H(V) of Definition 3.1 for V [n, d], or for an iterable of row batches [n_i, d] (streamed)."""
    batches = V.split(batch_size) if isinstance(V, torch.Tensor) else V
    moment: SecondMoment | None = None
    for batch in batches:
        if moment is None:
            moment = SecondMoment(batch.shape[-1], batch.device)
        moment.update(batch)
    if moment is None:
        raise ValueError("no embedding was given")
    return moment.entropy()


# ------------------------------------------------------------------------------ matching pursuit

def normalized_dictionary(W: torch.Tensor) -> torch.Tensor:
    """W [vocab, d] with unit-norm rows (all-zero rows stay zero)."""
    return W / W.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def matching_pursuit(v: torch.Tensor, W: torch.Tensor, k: int, absolute: bool = False,
                     chunk: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Algorithm 1: the k atoms (token ids) and coefficients selected for v [d] or each row of v [n, d].

    Returns (ids long [..., k], coefficients [..., k]) in selection order; coefficients refer to the
    unit-norm atoms (so c_1 / ||v|| is the cosine between v and its first token). Computed in the
    promoted dtype of v and W (at least float32), rows in chunks of `chunk` to bound memory.
    """
    dtype = torch.promote_types(torch.promote_types(v.dtype, W.dtype), torch.float32)
    atoms = normalized_dictionary(W.to(dtype))
    usable = atoms.norm(dim=-1) > 0
    rows = v.reshape(-1, v.shape[-1]).to(atoms.device, dtype)
    ids = torch.empty(rows.shape[0], k, dtype=torch.long, device=atoms.device)
    coeffs = torch.empty(rows.shape[0], k, dtype=dtype, device=atoms.device)
    for start in range(0, rows.shape[0], chunk):
        residual = rows[start:start + chunk].clone()
        for t in range(k):
            scores = residual @ atoms.T
            pick = scores.abs() if absolute else scores
            best = pick.masked_fill(~usable, -math.inf).argmax(dim=-1)
            c = scores.gather(1, best[:, None])
            residual -= c * atoms[best]
            ids[start:start + chunk, t] = best
            coeffs[start:start + chunk, t] = c[:, 0]
    return ids.reshape(*v.shape[:-1], k), coeffs.reshape(*v.shape[:-1], k)


# ------------------------------------------------------------------------ patch-level alignment

def mean_std_threshold(cos: torch.Tensor, value: float) -> torch.Tensor:
    """mean(s_p) + value * std(s_p) (population std) over the last dim."""
    return cos.mean(-1) + value * cos.std(-1, unbiased=False)


def relative_threshold(cos: torch.Tensor, value: float) -> torch.Tensor:
    """min(s_p) + value * (max(s_p) - min(s_p)) over the last dim."""
    lo, hi = cos.amin(-1), cos.amax(-1)
    return lo + value * (hi - lo)


def absolute_threshold(cos: torch.Tensor, value: float) -> torch.Tensor:
    """`value` for every map."""
    return torch.full(cos.shape[:-1], value, dtype=cos.dtype, device=cos.device)


# `metrics.threshold.rule` of `pad analyze` is checked against these names when the manifest loads.
THRESHOLD_RULES = Registry("threshold rule", {
    "mean_std": "trainer.analysis.metrics:mean_std_threshold",
    "relative": "trainer.analysis.metrics:relative_threshold",
    "absolute": "trainer.analysis.metrics:absolute_threshold",
})


@dataclass(frozen=True)
class ThresholdRule:
    """How the adaptive threshold c_p is chosen from one label's cosine map s_p (over the image's tokens).

    - mean_std (default, value=1.0): c_p = mean(s_p) + value * std(s_p) (population std): the tokens at
      least one standard deviation more similar to the tag than the image's average token. Adaptive to
      each projector's cosine range and robust to a single outlying token.
    - relative: c_p = min(s_p) + value * (max(s_p) - min(s_p)); the best token is always predicted, but
      one extreme token moves the threshold.
    - absolute: c_p = value for every label (not adaptive; for comparing with a fixed cut).
    """

    kind: str = "mean_std"
    value: float = 1.0

    def thresholds(self, cos: torch.Tensor) -> torch.Tensor:
        """c [...] for cosine maps cos [..., M]."""
        return THRESHOLD_RULES.get(self.kind)(cos, self.value)


def _batched(tokens: torch.Tensor, text: torch.Tensor, gt_masks: torch.Tensor,
             valid: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    if tokens.dim() == 2:
        tokens, text, gt_masks = tokens[None], text[None], gt_masks[None]
        valid = None if valid is None else valid[None]
    if valid is None:
        valid = torch.ones(text.shape[:2], dtype=torch.bool, device=text.device)
    return tokens, text, gt_masks.bool(), valid.bool()


def token_text_cosines(tokens: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """cos(t_p, token_i): tokens [B, M, D], text [B, L, D] -> [B, L, M] (float64 when given float64)."""
    dtype = torch.promote_types(torch.promote_types(tokens.dtype, text.dtype), torch.float32)
    t = F.normalize(text.to(dtype), dim=-1, eps=1e-12)
    x = F.normalize(tokens.to(dtype), dim=-1, eps=1e-12)
    return t @ x.transpose(-1, -2)


def predicted_masks(tokens: torch.Tensor, text: torch.Tensor,
                    rule: ThresholdRule = ThresholdRule()) -> torch.Tensor:
    """P_p = {i : cos(t_p, token_i) > c_p}: bool [B, L, M] (or [L, M] for one image)."""
    single = tokens.dim() == 2
    cos = token_text_cosines(tokens[None] if single else tokens, text[None] if single else text)
    pred = cos > rule.thresholds(cos)[..., None]
    return pred[0] if single else pred


def mask_iou(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """IoU of bool masks [..., M] (0 where both are empty)."""
    inter = (pred & gt).sum(-1).double()
    union = (pred | gt).sum(-1).double()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(union))


def patch_alignment_ious(tokens: torch.Tensor, text: torch.Tensor, gt_masks: torch.Tensor,
                         valid: torch.Tensor | None = None,
                         rule: ThresholdRule = ThresholdRule()) -> torch.Tensor:
    """IoU(P_p, G_p) of every valid label with a non-empty G_p, flattened in (image, label) order."""
    tokens, text, gt_masks, valid = _batched(tokens, text, gt_masks, valid)
    pred = predicted_masks(tokens, text, rule)
    keep = valid & gt_masks.any(-1)
    return mask_iou(pred, gt_masks)[keep]


def patch_alignment(tokens: torch.Tensor, text: torch.Tensor, gt_masks: torch.Tensor,
                    valid: torch.Tensor | None = None, rule: ThresholdRule = ThresholdRule()) -> float:
    """Align(V, W): mean IoU over labels (NaN when there is no label)."""
    ious = patch_alignment_ious(tokens, text, gt_masks, valid, rule)
    return float(ious.mean()) if ious.numel() else math.nan


def region_cosines(tokens: torch.Tensor, text: torch.Tensor, gt_masks: torch.Tensor,
                   valid: torch.Tensor | None = None) -> torch.Tensor:
    """cos(v_p, t_p), v_p = mean of the tokens in G_p, for every valid label with a non-empty G_p."""
    tokens, text, gt_masks, valid = _batched(tokens, text, gt_masks, valid)
    dtype = torch.promote_types(torch.promote_types(tokens.dtype, text.dtype), torch.float32)
    weights = gt_masks.to(dtype)
    v = (weights @ tokens.to(dtype)) / weights.sum(-1, keepdim=True).clamp(min=1.0)
    cos = F.cosine_similarity(v, text.to(dtype), dim=-1, eps=1e-12)
    return cos[valid & gt_masks.any(-1)]


def mean_region_cosine(tokens: torch.Tensor, text: torch.Tensor, gt_masks: torch.Tensor,
                       valid: torch.Tensor | None = None) -> float:
    """Table 3's Cos Sim: mean cos(v_p, t_p) over labels (NaN when there is no label)."""
    cos = region_cosines(tokens, text, gt_masks, valid)
    return float(cos.mean()) if cos.numel() else math.nan
