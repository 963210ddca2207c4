#!/usr/bin/env bash
# FABRIC.md Learnt 8: one endpoint per process (shared) vs one per link end (split), on net and tcp;ofi_rxm,
# with fi_pingpong -e rdm beside them, ROUNDS interleaved rounds (server cpu0, client cpu1), then medians.
# Usage: packages/rdma-core/bench/endpoint-layout/run.sh [ROUNDS]   (needs libfabric-dev, libfabric-bin)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rounds=${1:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -Wall -Wextra -o "$work/probe" "$here/endpoint_layout.c" -lfabric
port=47700
segs() { awk '/^Tcp:/{if(!h){for(i=1;i<=NF;i++)n[$i]=i;h=1}else print $n["OutSegs"]}' /proc/net/snmp; }
probe() { # provider mode
  port=$((port + 1))
  taskset -c 0 timeout 60 "$work/probe" -m "$2" -p "$1" -o "$port" >/dev/null 2>&1 &
  sleep 0.2
  taskset -c 1 timeout 60 "$work/probe" -m "$2" -p "$1" -o "$port" 127.0.0.1 2>&1 | grep RESULT || true
  wait
}
pingpong() { # provider
  port=$((port + 1))
  local s0 s1 line
  s0=$(segs)
  taskset -c 0 timeout 60 fi_pingpong -p "$1" -e rdm -B "$port" -I 20000 -S 64 >/dev/null 2>&1 &
  sleep 0.3
  line=$(taskset -c 1 timeout 60 fi_pingpong -p "$1" -e rdm -P "$port" -I 20000 -S 64 127.0.0.1 2>/dev/null | awk '$1=="64"')
  wait
  s1=$(segs)
  echo "RESULT prov=fi_pingpong-$1 mode=- mean_oneway_us=$(echo "$line" | awk '{print $7}') segs_per_rt=$(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.3f", (b - a) / 20000 }')"
}
for r in $(seq 1 "$rounds"); do
  order="shared split"; [ $((r % 2)) = 0 ] && order="split shared"
  for m in $order; do probe net "$m"; done
  pingpong net
  for m in $order; do probe 'tcp;ofi_rxm' "$m"; done
  pingpong tcp
done | tee "$work/all.txt"
echo "medians over $rounds rounds (one-way µs; fi_pingpong prints a mean):"
awk '{k=""; v=""; for(i=1;i<=NF;i++){split($i,a,"="); if(a[1]=="prov")p=a[2]; if(a[1]=="mode")m=a[2]; if(a[1]=="p50_oneway_us"||(a[1]=="mean_oneway_us"&&m=="-"))v=a[2]} print p" "m" "v}' "$work/all.txt" |
  sort -k1,2 -k3n | awk '{key=$1" "$2; n[key]++; v[key, n[key]]=$3} END {for (k in n) print k, v[k, int((n[k]+1)/2)]}' | sort
