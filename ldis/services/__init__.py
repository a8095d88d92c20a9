"""Use cases: each takes plain arguments, works in one transaction, audits, returns a result."""
