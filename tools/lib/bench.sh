# Sourced by the benchmark scripts (tools/bench.sh,
# tools/bench-concurrency.sh), after tools/lib/servers.sh and nginx_start:
#   rotated ROUND NAME...       the names, one a line, starting with the
#                               ROUND-th: interleaved rounds, the order
#                               rotated each round
#   measured FIELDS COMMAND...  runs COMMAND (a function will do) and prints
#                               the first FIELDS fields of the line
#                               "RESULT ..." it printed, then nginx's CPU ns
#                               over the run and its "<connections accepted>
#                               <requests>" before and after (nginx_counts);
#                               returns 1, COMMAND's output on stderr, when
#                               there is no such line
#   rate CALLS SECONDS          "N/s"

rotated() {
  rotated_round=$1
  shift
  echo "$@" | tr ' ' '\n' | awk -v r="$rotated_round" '{ a[NR] = $0 }
    END { for (i = 0; i < NR; i++) print a[(i + r - 1) % NR + 1] }'
}

measured() {
  measured_fields=$1
  shift
  measured_ns0=$(nginx_cpu_ns); measured_counts0=$(nginx_counts)
  measured_output=$("$@" 2>&1)
  measured_ns1=$(nginx_cpu_ns); measured_counts1=$(nginx_counts)
  measured_result=$(echo "$measured_output" | sed -n 's/^RESULT //p' | cut -d' ' -f1-"$measured_fields")
  if [ "$(echo $measured_result | wc -w)" -lt "$measured_fields" ]; then
    echo "$measured_output" >&2
    return 1
  fi
  echo "$measured_result $((measured_ns1 - measured_ns0)) $measured_counts0 $measured_counts1"
}

rate() {
  awk -v c="$1" -v w="$2" 'BEGIN { printf "%.0f/s", c / w }'
}
