"""Evaluation: pass@k and maj@n estimators, held-out evaluation runs, ``entrostat eval``."""

from entrostat.eval.majority import maj_at_n, majority_index
from entrostat.eval.passk import default_ks, parse_ks, pass_at_k, pass_at_k_many

__all__ = ["default_ks", "maj_at_n", "majority_index", "parse_ks", "pass_at_k", "pass_at_k_many"]
