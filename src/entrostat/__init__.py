"""entrostat: entropy control for RL post-training of language models.

The core is pure tensor math (``entrostat.ops``, ``entrostat.losses``); the
trainer, controllers, diagnostics and reports are built from it. Specification:
``shared/design/ALGORITHMS.md``.
"""

from entrostat.types import AuxRequest, LossOutput, RolloutBatch

__version__ = "0.1.0"
__all__ = ["AuxRequest", "LossOutput", "RolloutBatch", "__version__"]
