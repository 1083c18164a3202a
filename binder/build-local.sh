#!/usr/bin/env bash
# Build the Binder environment locally from the binder/ files alone, as repo2docker would (it
# needs Docker, which is not everywhere): a fresh venv, `pip install -r binder/requirements.txt`,
# then binder/postBuild in a copy of the repository; then run every notebook (nbmake) and
# measure memory under binder/start's environment.
#
#   binder/build-local.sh [WORKDIR]     (default: a new temporary folder; kept afterwards)
#
# Takes 5-15 minutes on 2 cores, most of it building llama-cpp-python unless pip's cache has it.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d -t dskit-binder.XXXXXX)}"
python="${PYTHON:-python3}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
echo "== building the Binder environment in $work"

want="$(sed -n 's/^python-\([0-9.]*\).*/\1/p' "$repo/binder/runtime.txt")"
have="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
[ "$want" = "$have" ] || echo "warning: binder/runtime.txt asks for Python $want, building with $have"

# The repository as Binder sees it: tracked files plus new ones not ignored by git.
rm -rf "$work/repo" && mkdir -p "$work/repo"
(cd "$repo" && git ls-files -z -co --exclude-standard | xargs -0 tar -cf -) | tar -xf - -C "$work/repo"

rm -rf "$work/venv"
"$python" -m venv "$work/venv"
# shellcheck disable=SC1091
. "$work/venv/bin/activate"
export DSKIT_CACHE_DIR="$work/models"   # postBuild and start both honour it
cd "$work/repo"
python -m pip install --progress-bar off -r binder/requirements.txt
BINDER_PIP_FLAGS="" bash binder/postBuild   # reuse pip's cache (Binder itself runs without)

echo "== running the notebooks under binder/start"
python -m pip install --progress-bar off 'nbmake==1.5.5' 'pytest-timeout==2.4.0'  # test tools only
binder/start python -m pytest --nbmake -p no:cacheprovider --timeout 1800 notebooks

echo "== memory: JupyterLab plus a kernel that chatted and embedded"
binder/start python bench/binder_memory.py
echo "== memory: JupyterLab plus a kernel that chatted and searched a knowledge base"
binder/start python bench/binder_memory.py --kb
