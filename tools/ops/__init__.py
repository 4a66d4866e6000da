"""On-call, against the production account: the model registry CLI (rollback) and the run history."""
