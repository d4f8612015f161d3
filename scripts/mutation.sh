#!/bin/sh
# Mutation score of money-path modules (docs/testing.md). Not part of CI: slow.
#   scripts/mutation.sh monitor/ledger/form8949.py [monitor/tax/selection.py ...]
# Each module must be listed in [tool.mutmut] only_mutate (pyproject.toml). Mutants run
# against the tests of tests/unit and tests/property that cover the mutated function.
# Results stay in mutants/ (git-ignored): `.venv/bin/mutmut results`, `mutmut show NAME`.
set -eu
cd "$(dirname "$0")/.."
if [ "$#" -eq 0 ]; then
    echo "usage: scripts/mutation.sh MODULE.py... (e.g. monitor/ledger/form8949.py)" >&2
    exit 2
fi
MUTMUT=${MUTMUT:-.venv/bin/mutmut}
if [ ! -x "$MUTMUT" ]; then
    echo "mutmut not found at $MUTMUT: .venv/bin/pip install -e '.[dev,mutation]'" >&2
    exit 2
fi
patterns=""
for module in "$@"; do
    if [ ! -f "$module" ]; then
        echo "no such module: $module" >&2
        exit 2
    fi
    name=$(printf '%s' "${module%.py}" | tr / .)
    patterns="$patterns $name.*"
done
start=$(date +%s)
# shellcheck disable=SC2086  # one glob argument per module, expanded by mutmut
"$MUTMUT" run $patterns
echo "elapsed: $(( $(date +%s) - start )) s"
for module in "$@"; do
    name=$(printf '%s' "${module%.py}" | tr / .)
    "$MUTMUT" results --all true | grep -F " $name." | awk -F': ' -v m="$module" '
        { n++; c[$NF]++ }
        END {
            killed = c["killed"] + c["timeout"] + c["segfault"]
            printf "%s: %d mutants, %d killed, %d survived, %d without tests, %d other: %.1f%%\n",
                m, n, killed, c["survived"], c["no tests"], n - killed - c["survived"] - c["no tests"],
                (n ? 100 * killed / n : 0)
        }'
done
