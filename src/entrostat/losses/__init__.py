"""Pure loss algebra (ALGORITHMS.md §1): advantages, surrogates, selections, aggregation, regularisers.

``objective.py`` is the one place that composes them from a ``LossConfig``.
"""

from entrostat.losses.advantages import (
    ADVANTAGES,
    compute_advantages,
    entropy_adv_shaping,
    group_ids_from_size,
)
from entrostat.losses.aggregation import AGGREGATIONS, Normalizer, aggregate
from entrostat.losses.config import FlexConfig, LossConfig
from entrostat.losses.objective import (
    AuxiliaryInputs,
    ObjectiveState,
    PolicyInputs,
    auxiliary_reinforce_loss,
    needs_selection_prepass,
    needs_token_entropy,
    objective,
    policy_loss,
    select_tokens,
)
from entrostat.losses.regularizers import KL_ESTIMATORS
from entrostat.losses.selections import (
    SELECTIONS,
    Selection,
    clip_cov_select,
    kl_cov_select,
    token_covariance,
    top_entropy_select,
)
from entrostat.losses.surrogates import (
    SURROGATES,
    ClipParams,
    FlexBounds,
    importance_ratio,
)

__all__ = [
    "ADVANTAGES", "AGGREGATIONS", "KL_ESTIMATORS", "SELECTIONS", "SURROGATES",
    "AuxiliaryInputs", "ClipParams", "FlexBounds", "FlexConfig", "LossConfig", "Normalizer", "ObjectiveState",
    "PolicyInputs", "Selection",
    "aggregate", "auxiliary_reinforce_loss", "clip_cov_select", "compute_advantages", "entropy_adv_shaping", "group_ids_from_size",
    "importance_ratio", "kl_cov_select", "needs_selection_prepass", "needs_token_entropy",
    "objective", "policy_loss", "select_tokens", "token_covariance", "top_entropy_select",
]
