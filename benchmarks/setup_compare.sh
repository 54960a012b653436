#!/usr/bin/env bash
# The checkout and venvs behind the "today's code" columns of benchmarks/compare.py.
#
#   benchmarks/setup_compare.sh            # then run the compare.py command it prints
#
# BASE_DIR   a git worktree at BASE_COMMIT (the last commit before the warehouse moved to DuckLake)
#            whose only change is this checkout's committed benchmarks/bench.py: the product code
#            there is exactly BASE_COMMIT's. Run again after changing bench.py to bring it over.
# VENV_DIR   one venv per DUCKDB_VERSIONS, each with BASE_DIR installed (editable) and that DuckDB.
# LAKE_PYTHON  the interpreter of the lake column; its pandas, pyarrow, pandera, Dagster ... versions
#            are pinned in the new venvs too (everything but DuckDB), so only the code and DuckDB differ.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PARENT=$(dirname "$REPO")
BASE_COMMIT=${BASE_COMMIT:-e9ce8bc}
BASE_DIR=${BASE_DIR:-$PARENT/bench-base}
VENV_DIR=${VENV_DIR:-$PARENT/bench-venvs}
DUCKDB_VERSIONS=${DUCKDB_VERSIONS:-"2.0.1 1.5.5"}
LAKE_PYTHON=${LAKE_PYTHON:-$REPO/.venv/bin/python}
PYTHON=${PYTHON:-python3}

if [ ! -e "$BASE_DIR/.git" ]; then
    git -C "$REPO" worktree add --detach "$BASE_DIR" "$BASE_COMMIT"
fi
# Only bench.py comes over, as one commit on top of BASE_COMMIT (detached: no branch is made).
git -C "$BASE_DIR" checkout --quiet --detach "$BASE_COMMIT"
git -C "$REPO" show HEAD:benchmarks/bench.py > "$BASE_DIR/benchmarks/bench.py"
if ! git -C "$BASE_DIR" diff --quiet; then
    git -C "$BASE_DIR" commit --quiet -m "benchmarks/bench.py of $(git -C "$REPO" rev-parse --short HEAD)" -- benchmarks/bench.py
fi
changed=$(git -C "$BASE_DIR" diff --name-only "$BASE_COMMIT" HEAD)
if [ -n "$changed" ] && [ "$changed" != "benchmarks/bench.py" ]; then
    echo "setup_compare: $BASE_DIR differs from $BASE_COMMIT in more than bench.py: $changed" >&2
    exit 1
fi

constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
if [ -x "$LAKE_PYTHON" ]; then
    "$LAKE_PYTHON" -m pip freeze --exclude-editable | grep -E '^[A-Za-z0-9_.-]+==' \
        | grep -viE '^(pagorecon|duckdb)' > "$constraints" || true
fi

for version in $DUCKDB_VERSIONS; do
    venv="$VENV_DIR/duckdb-$version"
    if [ ! -x "$venv/bin/python" ]; then
        "$PYTHON" -m venv "$venv"
    fi
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet -c "$constraints" -e "$BASE_DIR" "duckdb==$version"
    (cd / && "$venv/bin/python" -c "import duckdb, pagorecon_dagster as p; print('$venv:', 'duckdb', duckdb.__version__, 'pagorecon from', p.__file__)")
done

echo
echo "base: $BASE_DIR at $(git -C "$BASE_DIR" rev-parse --short HEAD) ($BASE_COMMIT + bench.py)"
echo "run, from the lake checkout (see benchmarks/README.md, Three columns):"
set -- $DUCKDB_VERSIONS
echo "  python benchmarks/compare.py \\"
for version in "$@"; do
    echo "    --column 'today on $version' $BASE_DIR $VENV_DIR/duckdb-$version/bin/python \\"
done
echo "    --column 'lake on 1.5.5' <lake checkout> <its python>"
