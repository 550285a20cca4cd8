#!/usr/bin/env bash
# Re-records keepalived's own verdict for every *.conf in this directory (issue 17 corpus).
#
#   sudo tests/configs/corpus/record-verdicts.sh            # all files
#   sudo tests/configs/corpus/record-verdicts.sh feature-x.conf ...   # some files
#
# For X.conf it writes X.verdict: first line `accept` (keepalived -t exited 0) or `reject`
# (any other exit), then keepalived's -t output (stdout+stderr) verbatim. verdicts.tsv lists
# file, exit code and verdict for all files. keepalived 2.2.7 -t exit codes (main.c
# config_test_exit, scheduler.h): 0 no report_config_error at all; 4 file not found / bad
# interface / fatal; 5 any other reported config problem, warnings and deprecations included
# (CONFIG_WARNING, CONFIG_DEPRECATED); 6 script security error. Messages keepalived only logs
# (log_message) do not change the exit code.
#
# keepalived runs in a network namespace holding exactly eth0, eth1 and eth2 (veth, up),
# because it checks the interfaces a file names against /sys (hence `ip netns exec`). It is
# run from this directory with a relative file name, so ${_PWD} and the file names in its
# messages do not depend on where the checkout lives; with -i kxcorpus (see CONFIG_ID).
# Needs root and keepalived 2.2.7.
# Files under inc/ are include fragments, not corpus entries. Idempotent.
set -euo pipefail

NS=kxcorpus-rec
# A fixed config id (-i), so @ID lines and ${_INSTANCE} do not depend on the host name;
# `keepxdp check` must be given the same: keepxdp check -i kxcorpus -f FILE.
CONFIG_ID=kxcorpus
KEEPALIVED=${KEEPALIVED:-keepalived}
cd "$(dirname "$0")"

cleanup() { ip netns del "$NS" 2>/dev/null || true; }
trap cleanup EXIT

if [[ $(id -u) != 0 ]]; then
    echo "record-verdicts.sh: needs root (network namespace)" >&2
    exit 1
fi
version=$("$KEEPALIVED" -v 2>&1 || true)
version=${version%%$'\n'*}   # no pipe into head: SIGPIPE under pipefail
if [[ $version != "Keepalived v2.2.7 "* ]]; then
    echo "record-verdicts.sh: want keepalived 2.2.7, found: $version" >&2
    exit 1
fi

cleanup
ip netns add "$NS"
for i in 0 1 2; do
    ip -n "$NS" link add "eth$i" type veth peer name "peer$i"
    ip -n "$NS" link set "eth$i" up
done

if (($# > 0)); then
    files=("$@")
else
    files=(*.conf)
fi

# verdicts.tsv: file, exit code, verdict; entries for files not re-recorded are kept.
declare -A exits=()
if [[ -f verdicts.tsv ]]; then
    while IFS=$'\t' read -r name rc _; do
        [[ $name == "#"* || ! -f $name ]] || exits[$name]=$rc
    done <verdicts.tsv
fi

for file in "${files[@]}"; do
    file=${file##*/}
    set +e
    output=$(ip netns exec "$NS" timeout 30 "$KEEPALIVED" -t -l -i "$CONFIG_ID" -f "$file" 2>&1)
    rc=$?
    set -e
    if ((rc == 0)); then verdict=accept; else verdict=reject; fi
    {
        echo "$verdict"
        if [[ -n $output ]]; then printf '%s\n' "$output"; fi
    } >"${file%.conf}.verdict"
    exits[$file]=$rc
    printf '%-50s %3d %s\n' "$file" "$rc" "$verdict"
done

{
    printf '# file\tkeepalived -t exit code\tverdict\n'
    for name in $(printf '%s\n' "${!exits[@]}" | LC_ALL=C sort); do
        if ((exits[$name] == 0)); then verdict=accept; else verdict=reject; fi
        printf '%s\t%s\t%s\n' "$name" "${exits[$name]}" "$verdict"
    done
} >verdicts.tsv
