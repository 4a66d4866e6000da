#!/bin/bash
# EMR bootstrap action: install the Python packages the Spark jobs import, on every node, before Spark
# starts, from the wheels `make deploy` uploaded beside the code bundle: no package index is contacted.
#   $1  S3 URI of the pinned requirements file, every requirement with its --hash (make requirements-emr)
#   $2  S3 URI of the folder of wheels for this cluster's architecture (code/<version>/wheels/<arch>/)
# Runs as the hadoop user on Amazon Linux 2023 with EMR 7.x's system Python 3.9. Any missing hash or
# wheel fails the bootstrap, and with it the cluster's start, saying which one.
set -euo pipefail
requirements_uri="${1:?usage: install_python_deps.sh s3://.../requirements-emr.txt s3://.../wheels/<arch>/}"
wheels_uri="${2:?usage: install_python_deps.sh s3://.../requirements-emr.txt s3://.../wheels/<arch>/}"
workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT
fail() { echo "recsys bootstrap FAILED: $*" >&2; exit 1; }

aws s3 cp --only-show-errors "$requirements_uri" "$workdir/requirements.txt"
aws s3 cp --only-show-errors --recursive "${wheels_uri%/}/" "$workdir/wheels/"

# Every requirement pinned (name==version) with at least one hash; pip's --require-hashes would refuse
# too, but here the message names the lines.
requirements="$(sed -e 's/#.*//' "$workdir/requirements.txt" | tr -d '\r' | sed -e ':a' -e '/\\$/N; s/\\\n//; ta')"
unhashed="$(printf '%s\n' "$requirements" | grep -E '\S' | grep -v -- '--hash=sha256:' || true)"
[ -z "$unhashed" ] || fail "requirements without --hash (recompile with make requirements-emr): $(echo $unhashed)"
unpinned="$(printf '%s\n' "$requirements" | grep -E '\S' | grep -v -E '^[A-Za-z0-9._-]+==[^ ]+ ' || true)"
[ -z "$unpinned" ] || fail "requirements not pinned with ==: $(echo $unpinned)"

# A wheel for every pin: name-version-*.whl, the name normalised as wheels spell it.
missing=""
for pin in $(printf '%s\n' "$requirements" | grep -E '\S' | awk '{print $1}'); do
  name="$(echo "${pin%%==*}" | tr 'A-Z' 'a-z' | sed -e 's/[-.]\{1,\}/_/g')"
  version="${pin#*==}"
  compgen -G "$workdir/wheels/${name}-${version}-*.whl" > /dev/null || missing="$missing $pin"
done
[ -z "$missing" ] || fail "no wheel in $wheels_uri for:$missing (make deploy downloads them for the configured instance types' architecture)"

# implicit needs the OpenMP runtime; present on EMR images, installed here if a custom AMI lacks it.
if ! ldconfig -p | grep -q libgomp; then sudo dnf install -y libgomp; fi
sudo python3 -m pip install --quiet --no-cache-dir --no-index --find-links "$workdir/wheels" \
  --only-binary=:all: --require-hashes -r "$workdir/requirements.txt"
python3 -c "import implicit, numpy, pandas, pyarrow, scipy; print('recsys bootstrap ok', implicit.__version__)"
