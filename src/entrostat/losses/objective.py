"""The one place that composes loss pieces: ``objective``, the core API every host calls.

``objective(inputs, loss_cfg, state) -> LossOutput`` (unpacks as ``loss, metrics``) takes plain
tensors — per-token log-probs, old log-probs, advantages (or rewards + group ids), mask, token
entropy, optional reference log-probs and correctness, and optional auxiliary rows — and knows
no trainer: our trainer, the TRL and the veRL integrations all call it. ``state`` carries what
the host computes over the whole optimizer step (all micro-batches and ranks): the normaliser
and the token selection of the rows in this call.

Flow per micro-batch: token advantages (with optional Entropy-Adv shaping) →
surrogate → token selection (drop / KL-Cov penalty) → aggregation with the
step-wide normaliser → + entropy bonus, KL to reference, positive NLL.

Selections in ``minibatch`` scope are computed ONCE per optimizer step over the
whole mini-batch by ``select_tokens`` (the trainer gathers the step's detached
log-probs / entropies first) and passed in sliced per micro-batch; in
``microbatch`` scope ``policy_loss`` computes them itself from the micro-batch,
exactly as veRL 0.9 does. Metrics are each micro-batch's additive share of the
step value (sum them over micro-batches and ranks).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from entrostat.losses.advantages import compute_advantages, entropy_adv_shaping
from entrostat.losses.aggregation import Normalizer, aggregate
from entrostat.losses.config import LossConfig
from entrostat.losses.regularizers import KL_ESTIMATORS
from entrostat.losses.selections import (
    SELECTIONS,
    Selection,
    clip_cov_select,
    kl_cov_select,
    token_covariance,
    top_entropy_select,
)
from entrostat.losses.surrogates import SURROGATES, ClipParams, FlexBounds, SurrogateOut
from entrostat.ops import masked_sum
from entrostat.types import LossOutput


@dataclass(frozen=True)
class PolicyInputs:
    """Tensors of one micro-batch. ``logprobs`` / ``token_entropy`` carry gradients (T = 1).

    ``advantages`` may be None when ``rewards`` and ``group_ids`` are given: ``objective`` then
    computes them with ``cfg.advantage`` (the call must hold whole groups).
    """

    logprobs: torch.Tensor  # (B, T)
    old_logprobs: torch.Tensor  # (B, T)
    advantages: torch.Tensor | None  # (B,) or (B, T)
    mask: torch.Tensor  # (B, T)
    token_entropy: torch.Tensor | None = None  # (B, T); needed by entropy bonus / Entropy-Adv / top_entropy
    ref_logprobs: torch.Tensor | None = None  # (B, T); needed when kl_coef > 0
    is_correct: torch.Tensor | None = None  # (B,) bool; needed when positive_nll_coef > 0
    rewards: torch.Tensor | None = None  # (B,); with group_ids, instead of advantages
    group_ids: torch.Tensor | None = None  # (B,)


@dataclass(frozen=True)
class AuxiliaryInputs:
    """Rows of a declared auxiliary rollout joining the objective as an additive term (SCOPE-RL):
    ``logprobs`` (B_aux, T) with gradient, ``mask`` (B_aux, T), ``counts`` (B_aux,) bool — the rows that
    count — and the term's ``weight`` α."""

    logprobs: torch.Tensor
    mask: torch.Tensor
    counts: torch.Tensor
    weight: float


@dataclass(frozen=True)
class ObjectiveState:
    """What the host computes over the whole optimizer step and passes in: the step's ``normalizer``
    (default: from this call's mask, with Dr.GRPO's T_max = ``max_len``) and the ``selection`` rows of
    this call (``select_tokens`` over the mini-batch, sliced; None: none, or microbatch scope)."""

    normalizer: Normalizer | None = None
    selection: Selection | None = None
    max_len: int | None = None


def objective(
    x: PolicyInputs | None, cfg: LossConfig, state: ObjectiveState | None = None, aux: AuxiliaryInputs | None = None,
) -> LossOutput:
    """The objective of one call: the policy loss with its regularisers (``policy_loss``) for ``x``, plus
    the additive auxiliary term for ``aux`` (``auxiliary_reinforce_loss``); either may be None (a host
    may pass the auxiliary rows as a micro-batch of their own). Metrics are additive shares of the step's."""
    state = state or ObjectiveState()
    loss, metrics = None, {}
    if x is not None:
        if x.advantages is None:
            if x.rewards is None or x.group_ids is None:
                raise ValueError("objective needs advantages, or rewards and group_ids to compute them")
            x = dataclasses.replace(x, advantages=compute_advantages(cfg.advantage, x.rewards, x.group_ids))
        norm = state.normalizer or Normalizer.from_mask(x.mask, max_len=state.max_len)
        loss, metrics = policy_loss(cfg, x, norm, state.selection)
    if aux is not None:
        term, aux_metrics = auxiliary_reinforce_loss(aux.logprobs, aux.mask, aux.counts, aux.weight)
        loss = term if loss is None else loss + term
        metrics = {**metrics, **aux_metrics}
    if loss is None:
        raise ValueError("objective needs policy inputs, auxiliary rows, or both")
    return LossOutput(loss, metrics)


def needs_token_entropy(cfg: LossConfig) -> bool:
    return cfg.entropy_coef != 0 or cfg.entropy_adv or cfg.selection == "top_entropy"


def needs_selection_prepass(cfg: LossConfig) -> bool:
    """True when the trainer must gather the step's detached stats and call ``select_tokens``."""
    return cfg.selection != "none" and cfg.selection_scope == "minibatch"


def clip_params(cfg: LossConfig) -> ClipParams:
    flex = FlexBounds(**dataclasses.asdict(cfg.flex))  # FlexConfig mirrors FlexBounds field for field
    return ClipParams(cfg.eps_low, cfg.eps_high, cfg.dual_clip, cfg.beta1, cfg.beta2, flex)


def token_advantages(cfg: LossConfig, advantages: torch.Tensor, mask: torch.Tensor, token_entropy=None) -> torch.Tensor:
    """(B, T) advantages: broadcast of (B,), then Entropy-Adv shaping when enabled."""
    adv = advantages[:, None].expand(mask.shape) if advantages.dim() == 1 else advantages
    if cfg.entropy_adv:
        if token_entropy is None:
            raise ValueError("entropy_adv needs token_entropy (B, T); pass it in PolicyInputs")
        adv = entropy_adv_shaping(adv, token_entropy, cfg.entropy_adv_alpha, cfg.entropy_adv_kappa)
    # 0 off the mask: _validate allows non-finite advantages there (e.g. a row with no valid token),
    # and −A·∂r/∂logπ would turn the zero upstream gradient of masked tokens into NaN.
    return torch.where(mask.bool(), adv, torch.zeros((), dtype=adv.dtype, device=adv.device))


def _surrogate(cfg: LossConfig, logprobs, old_logprobs, adv) -> SurrogateOut:
    return SURROGATES.get(cfg.surrogate)(logprobs, old_logprobs, adv, clip_params(cfg))


def select_tokens(
    cfg: LossConfig,
    *,
    advantages: torch.Tensor,
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    mask: torch.Tensor,
    token_entropy: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Selection:
    """The selection of ``cfg.selection`` (a ``SELECTIONS`` entry) over one scope (all tensors (B, T) of
    that scope, detached)."""
    if cfg.selection == "none":
        return Selection()
    adv = token_advantages(cfg, advantages, mask, token_entropy)
    return SELECTIONS.get(cfg.selection)(cfg, adv, logprobs, old_logprobs, mask, token_entropy, generator)


@SELECTIONS.register("top_entropy")
def _top_entropy(cfg: LossConfig, adv, logprobs, old_logprobs, mask, token_entropy, generator) -> Selection:
    """The 80/20 rule (2506.01939): only the highest-entropy tokens keep their gradient."""
    if token_entropy is None:
        raise ValueError("selection top_entropy needs token_entropy (B, T)")
    return Selection(drop=top_entropy_select(token_entropy, mask, cfg.top_entropy_rho))


@SELECTIONS.register("kl_cov")
def _kl_cov(cfg: LossConfig, adv, logprobs, old_logprobs, mask, token_entropy, generator) -> Selection:
    """KL-Cov (2505.22617): the top-k covariance tokens get a |log r| penalty."""
    return Selection(penalize=kl_cov_select(token_covariance(adv, logprobs, mask), mask, cfg.kl_cov_ratio))


@SELECTIONS.register("clip_cov")
def _clip_cov(cfg: LossConfig, adv, logprobs, old_logprobs, mask, token_entropy, generator) -> Selection:
    """Clip-Cov (2505.22617): a random share of the not-yet-clipped tokens with covariance in (lb, ub)
    lose their gradient."""
    cov = token_covariance(adv, logprobs, mask)
    sur = _surrogate(cfg, logprobs.detach(), old_logprobs, adv.detach())
    clipped = sur.clipped_low | sur.clipped_high  # "already PPO-clipped" as veRL's pg2 > pg1
    return Selection(drop=clip_cov_select(cov, mask, clipped, cfg.clip_cov_ratio, cfg.clip_cov_lb, cfg.clip_cov_ub,
                                          generator))


def _validate(x: PolicyInputs) -> None:
    shape = x.mask.shape
    for name in ("logprobs", "old_logprobs", "token_entropy", "ref_logprobs"):
        t = getattr(x, name)
        if t is not None and t.shape != shape:
            raise ValueError(f"{name} has shape {tuple(t.shape)} but mask {tuple(shape)}; both must be (B, T)")
    if x.advantages.shape not in (shape, shape[:1]):
        raise ValueError(f"advantages has shape {tuple(x.advantages.shape)}; expected (B,) or (B, T) with (B, T) = {tuple(shape)}")
    m = x.mask.bool()
    adv_m = m if x.advantages.dim() == 2 else m.any(-1)
    for name, t, mm in (("old_logprobs", x.old_logprobs, m), ("advantages", x.advantages, adv_m), ("ref_logprobs", x.ref_logprobs, m)):
        if t is not None and bool((~torch.isfinite(t) & mm).any()):
            raise ValueError(f"{name} contains NaN or inf at valid tokens; the rollout produced non-finite values")


def policy_loss(
    cfg: LossConfig,
    x: PolicyInputs,
    normalizer: Normalizer,
    selection: Selection | None = None,
    check: bool = True,
) -> LossOutput:
    """Loss of one micro-batch (its additive share of the step's loss) and its metric shares."""
    if check:
        _validate(x)
    if selection is None and cfg.selection != "none":
        if cfg.selection_scope == "minibatch":
            raise ValueError(
                "selection_scope 'minibatch' needs the selection of the whole mini-batch: call select_tokens "
                "on the mini-batch and pass selection.rows(...) for each micro-batch"
            )
        selection = select_tokens(
            cfg, advantages=x.advantages, logprobs=x.logprobs.detach(), old_logprobs=x.old_logprobs,
            mask=x.mask, token_entropy=None if x.token_entropy is None else x.token_entropy.detach(),
        )
    selection = selection or Selection()
    adv = token_advantages(cfg, x.advantages, x.mask, x.token_entropy)
    sur = _surrogate(cfg, x.logprobs, x.old_logprobs, adv)
    per_token = sur.loss
    if selection.penalize is not None:
        per_token = per_token + cfg.kl_cov_coef * selection.penalize * (x.logprobs - x.old_logprobs).abs()
    if selection.drop is not None:
        per_token = torch.where(selection.drop, torch.zeros_like(per_token), per_token)
    pg = aggregate(per_token, x.mask, cfg.aggregation, normalizer)
    loss, metrics = pg, {"pg_loss": pg.detach()}
    loss = loss + _regularisers(cfg, x, normalizer, metrics)
    metrics.update(_clip_metrics(sur, selection, x.mask, normalizer))
    return LossOutput(loss, metrics)


def _regularisers(cfg: LossConfig, x: PolicyInputs, norm: Normalizer, metrics: dict) -> torch.Tensor:
    """Entropy bonus, KL to reference, positive NLL — each aggregated like the policy loss."""
    total = torch.zeros((), dtype=x.logprobs.dtype, device=x.logprobs.device)
    if cfg.entropy_coef != 0:  # < 0: an entropy penalty (the thermostat lowers entropy with it)
        if x.token_entropy is None:
            raise ValueError("entropy_coef ≠ 0 needs token_entropy (B, T) with gradient")
        ent = aggregate(x.token_entropy, x.mask, cfg.aggregation, norm)
        total = total - cfg.entropy_coef * ent
        metrics["entropy_bonus"] = ent.detach()
    if cfg.kl_coef > 0:
        if x.ref_logprobs is None:
            raise ValueError("kl_coef > 0 needs ref_logprobs (B, T) from a reference model")
        kl = aggregate(KL_ESTIMATORS.get(cfg.kl_estimator)(x.logprobs, x.ref_logprobs), x.mask, cfg.aggregation, norm)
        total = total + cfg.kl_coef * kl
        metrics["kl_ref"] = kl.detach()
    if cfg.positive_nll_coef > 0:
        if x.is_correct is None:
            raise ValueError("positive_nll_coef > 0 needs is_correct (B,)")
        correct_tokens = x.mask * x.is_correct[:, None].to(x.mask.dtype)
        if cfg.positive_nll_norm == "correct_tokens":  # Klear 2508.07629's code: the mean over correct tokens
            nll = masked_sum(-x.logprobs, correct_tokens) / max(norm.num_correct_tokens, 1.0)
        else:  # ours: the step's aggregation, like the policy loss (micro-batch invariant either way)
            nll = aggregate(-x.logprobs, correct_tokens, cfg.aggregation, norm)
        total = total + cfg.positive_nll_coef * nll
        metrics["positive_nll"] = nll.detach()
    return total


def _clip_metrics(sur: SurrogateOut, sel: Selection, mask: torch.Tensor, norm: Normalizer) -> dict[str, torch.Tensor]:
    n = max(norm.num_tokens, 1.0)
    out = {
        "clip_frac_low": masked_sum(sur.clipped_low.float(), mask) / n,
        "clip_frac_high": masked_sum(sur.clipped_high.float(), mask) / n,
        "dual_clip_frac": masked_sum(sur.dual_clipped.float(), mask) / n,
    }
    for name, m in (("dropped_frac", sel.drop), ("penalized_frac", sel.penalize)):
        if m is not None:
            out[name] = masked_sum(m.float(), mask) / n
    return out


def auxiliary_reinforce_loss(
    logprobs: torch.Tensor, mask: torch.Tensor, positive: torch.Tensor, alpha: float, n_rows: int | None = None
) -> LossOutput:
    """SCOPE-RL's additive term (2510.08141 v7, our reconstruction, ALGORITHMS.md §2.3):
    α · Σ_rows(−1[positive] · Σ_t logπ_θ,t) / n_rows. Negative rows contribute 0 but count in
    ``n_rows`` (default: all rows given, so split calls must pass the total)."""
    if logprobs.shape != mask.shape or positive.shape != mask.shape[:1]:
        raise ValueError(f"logprobs {tuple(logprobs.shape)}, mask {tuple(mask.shape)} and positive "
                         f"{tuple(positive.shape)} must be (B, T), (B, T) and (B,)")
    per_row = -masked_sum(logprobs, mask, dim=-1) * positive.to(logprobs.dtype)  # (B,)
    term = alpha * per_row.sum() / max(n_rows if n_rows is not None else mask.shape[0], 1)
    return LossOutput(term, {"aux_loss": term.detach(), "aux_positive_frac": positive.float().mean()})
