"""The customer pyramid: which tier a customer's value earns. Pure.

A customer's *rank* is the share of customers whose value is strictly lower, from 0 (lowest) to 1
(highest), as PostgreSQL's `percent_rank()` computes it. The configured cut-offs say from which rank
each tier starts; the defaults put the top 20% in platinum and gold (the 20/80 rule).
"""

from __future__ import annotations

from app.core.settings import TierCutoffs
from app.customers.models import Tier


def tier_for_rank(rank: float, cutoffs: TierCutoffs) -> Tier:
    if rank >= cutoffs.platinum:
        return Tier.platinum
    if rank >= cutoffs.gold:
        return Tier.gold
    if rank >= cutoffs.iron:
        return Tier.iron
    return Tier.lead
