#!/usr/bin/env bash
# staticcheck over the whole module (`make lint`), at the version pinned in the Makefile, run
# through the Go module proxy (no tool dependency in go.mod). Findings listed in
# .ci/staticcheck-known.txt (file, check and message, without line numbers, which move) are
# reported but let through: they are in code another change is restructuring. Any other finding
# fails; a listed finding that is gone is named so that its line can be deleted.
set -euo pipefail
cd "$(dirname "$0")/.."
GO="${GO:-go}"
STATICCHECK_VERSION="${STATICCHECK_VERSION:?set by the Makefile}"
known=.ci/staticcheck-known.txt

out=$("$GO" run "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}" ./... 2>&1) && status=0 || status=$?
if [[ $status -ne 0 && -z "$out" ]]; then
	echo "staticcheck failed to run" >&2
	exit "$status"
fi
# file:line:col: message (CODE)  ->  file: message (CODE)
found=$(printf '%s\n' "$out" | sed -nE 's/^([^:]+):[0-9]+:[0-9]+: (.*)$/\1: \2/p' | sort -u)
if [[ $status -ne 0 && -z "$found" ]]; then
	printf '%s\n' "$out" >&2 # not findings: a build or load error
	exit "$status"
fi
expected=$({ grep -v '^#' "$known" || true; } | sed '/^$/d' | sort -u)
new=$(comm -23 <(printf '%s\n' "$found" | sed '/^$/d') <(printf '%s\n' "$expected"))
gone=$(comm -13 <(printf '%s\n' "$found" | sed '/^$/d') <(printf '%s\n' "$expected"))
if [[ -n "$gone" ]]; then
	printf 'staticcheck: fixed, delete from %s:\n%s\n' "$known" "$gone"
fi
let_through=$(comm -12 <(printf '%s\n' "$found" | sed '/^$/d') <(printf '%s\n' "$expected"))
if [[ -n "$let_through" ]]; then
	printf 'staticcheck: %d known finding(s) let through (%s)\n' "$(printf '%s\n' "$let_through" | grep -c .)" "$known"
fi
if [[ -n "$new" ]]; then
	printf 'staticcheck:\n%s\n' "$new" >&2
	exit 1
fi
