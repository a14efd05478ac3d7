"""The fine-tuning recipe's named choices, importable without torch: `pneumoviewer finetune`'s parser
lists them when any command starts, and `training.finetune` checks its options against them."""

from __future__ import annotations

# The site half of each batch: "balanced" (positives and negatives equally) or "prevalence" (every case
# equally often, so at the site's own share of positives). Measured in docs/model.md.
SITE_SAMPLING = ("balanced", "prevalence")
