"""Developer and operator tools, not part of the deployed pipeline: release/ (build and deploy to AWS),
ops/ (on-call against production), local/ (local development), datagen/ (data generators)."""
