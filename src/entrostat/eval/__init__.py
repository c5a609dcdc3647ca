"""Evaluation: the pass@k estimator (evaluation runs build on it)."""

from entrostat.eval.passk import pass_at_k, pass_at_k_many

__all__ = ["pass_at_k", "pass_at_k_many"]
