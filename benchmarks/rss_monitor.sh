#!/bin/sh
# Samples the resident set size (MiB) of running tfpg.train processes every INTERVAL seconds.
# Usage: benchmarks/rss_monitor.sh OUTPUT.tsv [INTERVAL]
out="$1"; interval="${2:-30}"
printf 'time\tpid\trss_mib\targs\n' > "$out"
while true; do
  ps -eo pid=,rss=,args= | grep "tfpg.train" | grep -v grep | while read -r pid rss args; do
    printf '%s\t%s\t%s\t%s\n' "$(date +%s)" "$pid" "$((rss / 1024))" "$(echo "$args" | grep -o -- '--env=[^ ]*  *--seed=[^ ]*\|--env=[^ ]* --seed=[^ ]*')" >> "$out"
  done
  sleep "$interval"
done
