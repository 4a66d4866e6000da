"""Local development: make run, tune, run-chain and airflow on the local stack, and their helpers."""
