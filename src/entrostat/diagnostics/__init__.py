"""Diagnostics of the entropy mechanism (ALGORITHMS.md §2.1): token-entropy statistics, the covariance
term and the entropy change it predicts (Cui et al. 2505.22617), token quadrants, and the law
R = −a·exp(H) + b fitted along a run.

Pure functions of tensors / floats, except ``runs.py``, which reads a run's metrics.jsonl.
``step.policy_diagnostics`` is the trainer's one call; it logs the ``diag/...`` keys.
"""

from entrostat.diagnostics.covariance import (
    COVARIANCE_FORMS,
    HIGH_PROB,
    QUADRANTS,
    covariance_terms,
    predicted_entropy_change,
    quadrant_breakdown,
    token_quadrants,
)
from entrostat.diagnostics.entropy_change import (
    entropy_change_agreement,
    entropy_change_pairs,
    moving_average,
    pearson,
    sign_agreement,
)
from entrostat.diagnostics.entropy_stats import (
    HIGH_ENTROPY_NATS,
    masked_quantiles,
    token_entropy_stats,
)
from entrostat.diagnostics.law import (
    MIN_POINTS,
    LawFit,
    LawFitError,
    bootstrap_law,
    fit_entropy_law,
)
from entrostat.diagnostics.step import policy_diagnostics

__all__ = [
    "COVARIANCE_FORMS", "HIGH_ENTROPY_NATS", "HIGH_PROB", "MIN_POINTS", "QUADRANTS",
    "LawFit", "LawFitError", "bootstrap_law", "covariance_terms", "entropy_change_agreement",
    "entropy_change_pairs", "fit_entropy_law", "masked_quantiles", "moving_average", "pearson",
    "policy_diagnostics", "predicted_entropy_change", "quadrant_breakdown", "sign_agreement",
    "token_entropy_stats", "token_quadrants",
]
