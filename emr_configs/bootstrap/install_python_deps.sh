#!/bin/bash
# EMR bootstrap action: install the Python packages the Spark jobs import, on every node, before
# Spark starts. Argument 1: S3 URI of a pinned requirements file (deployed by `make deploy`).
# Runs as the hadoop user on Amazon Linux 2023 with EMR 7.x's system Python 3.9.
set -euo pipefail
requirements_uri="${1:?usage: install_python_deps.sh s3://bucket/path/requirements-emr.txt}"
workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT
aws s3 cp "$requirements_uri" "$workdir/requirements.txt"
# implicit needs the OpenMP runtime; present on EMR images, installed here if a custom AMI lacks it.
if ! ldconfig -p | grep -q libgomp; then sudo dnf install -y libgomp; fi
sudo python3 -m pip install --quiet --no-cache-dir -r "$workdir/requirements.txt"
python3 -c "import implicit, numpy, pandas, pyarrow, scipy; print('recsys bootstrap ok', implicit.__version__)"
