"""b12plan: plans, explains and monitors vitamin B12 injection therapy."""
