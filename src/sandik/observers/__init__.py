"""Observer organisations' copies of tally sheets and the discrepancy workflow (store-backed shell)."""
