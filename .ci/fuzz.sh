#!/usr/bin/env bash
# Runs every fuzz target of the module briefly (FUZZTIME each, default 10s), one after another:
# `make fuzz`. The targets are found, not listed here, so a new one is fuzzed without an edit.
# Only the fuzz targets run (-run '^$'), so no package's server tests (Samba, slapd) start.
set -euo pipefail
cd "$(dirname "$0")/.."
GO="${GO:-go}"
FUZZTIME="${FUZZTIME:-10s}"

mapfile -t dirs < <(git ls-files '*_test.go' | xargs grep -l '^func Fuzz' | xargs -n1 dirname | sort -u)
failed=()
for dir in "${dirs[@]}"; do
	for target in $("$GO" test -list '^Fuzz' "./$dir" | grep '^Fuzz'); do
		echo "== $dir $target ($FUZZTIME)"
		if ! "$GO" test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "./$dir"; then
			failed+=("$dir $target")
		fi
	done
done
if ((${#failed[@]})); then
	printf 'fuzz: failed: %s\n' "${failed[@]}" >&2
	exit 1
fi
