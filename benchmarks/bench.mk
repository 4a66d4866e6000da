# Benchmarks (included by the Makefile): speed, memory and ranking quality, measured on this machine.
# Scripts and helpers live in benchmarks/; raw results and intermediate data in var/bench/ (git-ignored).
BENCH_SEED ?= 42
# MovieLens-100K (the quality benchmark and the chain run); spelled out because this file may be
# included before the Makefile defines ML_STAMP (prerequisites are expanded when a rule is read).
BENCH_ML_STAMP := $(DATA)/movielens/raw/_manifest.json

.PHONY: bench
bench: check-java $(STAMP) $(BENCH_ML_STAMP) ## every benchmark (~30 min here): docs/benchmarks.md and docs/bench_*.png
	$(PY) -m benchmarks.run_all --seed $(BENCH_SEED)

.PHONY: bench-quick
bench-quick: check-java $(STAMP) $(BENCH_ML_STAMP) ## the same benchmarks at small sizes (< 5 min): page in var/bench/quick/
	$(PY) -m benchmarks.run_all --quick --seed $(BENCH_SEED)
