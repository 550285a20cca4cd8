#!/usr/bin/env bash
# Compares `keepxdp check` with the recorded keepalived verdicts, file by file (issue 17).
#   tests/configs/corpus/compare-keepxdp.sh [KEEPXDP]   (default: target/debug/keepxdp)
# Agreement (as vrrp-user/tests/config_corpus.rs, which CI runs): keepalived exit 0 =>
# keepxdp no `error:` line; keepalived exit 5 (problems reported, warnings included; it would
# run the file) => at least one `FILE:LINE:COL: warning|error:` line; any other exit =>
# keepxdp exit non-zero and at least one `FILE:LINE:COL: error:` line. Prints one row per file
# (verdict, keepxdp exit, milliseconds, agreement, first error or warning) and N/M at the end.
# Uses the recorder's config id (-i kxcorpus). Runs keepxdp from / on absolute paths, so nothing depends on the caller's directory.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
keepxdp=${1:-$here/../../../target/debug/keepxdp}
keepxdp=$(realpath "$keepxdp")
agree=0 total=0
for conf in "$here"/*.conf; do
    name=${conf##*/}
    verdict_file=${conf%.conf}.verdict
    [[ -f $verdict_file ]] || continue
    verdict=$(head -n1 "$verdict_file")
    start=$(date +%s%N)
    output=$(cd / && timeout 10 "$keepxdp" check -i kxcorpus -f "$conf" 2>&1)
    rc=$?
    ms=$((($(date +%s%N) - start) / 1000000))
    errors=$(grep -E ': error: ' <<<"$output" || true)
    located=$(grep -E '^[^ ]+:[0-9]+:[0-9]+: error: ' <<<"$output" || true)
    theirs=$(awk -F'\t' -v f="$name" '$1 == f { print $2 }' "$here/verdicts.tsv")
    reported=$(grep -E '^[^ ]+:[0-9]+:[0-9]+: (warning|error): ' <<<"$output" || true)
    if [[ $verdict == accept ]]; then
        [[ $rc == 0 && -z $errors ]] && ok=agree || ok=DISAGREE
        first=$(head -n1 <<<"$errors")
    elif [[ $theirs == 5 ]]; then
        [[ -n $reported ]] && ok=agree || ok=DISAGREE
        first=$(head -n1 <<<"$reported")
    else
        [[ $rc != 0 && -n $located ]] && ok=agree || ok=DISAGREE
        first=$(head -n1 <<<"${located:-$(grep -E 'warning|error' <<<"$output" | head -n1)}")
    fi
    grep -q 'panicked' <<<"$output" && ok="$ok PANIC"
    total=$((total + 1))
    [[ $ok == agree ]] && agree=$((agree + 1))
    printf '%-42s %-6s %3s %5sms %-8s %s\n' "$name" "$verdict" "$rc" "$ms" "$ok" "${first#"$here"/}"
done
echo "agreement: $agree/$total"
