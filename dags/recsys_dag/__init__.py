"""Helpers used only by the recsys_training DAG: configuration, S3 locations, EMR operators, the quality
gate, model promotion and alerts. Nothing here imports pyspark; heavy imports stay inside functions."""
