#!/bin/bash
# `streamtrack watch`'s effect on matching speed (README, "Terminal view"): the same rules and
# messages through `run` (deliveries to /dev/null), `run --analytics` (the engine `watch`
# runs) and `watch` in a tmux pane of its own (160 x 40, timed until its header says "input
# ended"), alternating, ROUNDS times. Prints wall ms and CPU s (user + sys) of each.
#
#   cargo build --release -p streamtrack-cli
#   cargo run --release -p streamtrack-web --example workload_files -- DIR 100000 200000
#   for i in 1 2 3 4 5; do cat DIR/messages.jsonl; done > DIR/1m.jsonl
#   crates/streamtrack-web/examples/watch_vs_run.sh target/release/streamtrack DIR DIR/1m.jsonl [ROUNDS]
#
# Run it once more with an empty input file to get the start-up (loading and compiling the
# rules), and subtract it. Needs tmux and GNU time (/usr/bin/time).
set -u
BIN=$(realpath "$1"); D=$2; IN=$3; ROUNDS=${4:-2}
SOCK=streamtrack-watch-vs-run-$$
ms() { date +%s%3N; }
one_run() {
  local name=$1; shift
  local t0=$(ms)
  /usr/bin/time -f "%U %S" -o "$D/time.out" "$BIN" run --rules "$D/rules.jsonl" "$@" "$IN" > /dev/null 2> "$D/run.err"
  local t1=$(ms)
  read -r u s < "$D/time.out"
  echo "$name wall $(( t1 - t0 )) ms cpu $(echo "$u + $s" | bc) s"
}
one_watch() {
  rm -f "$D/watch.time"
  local t0=$(ms)
  tmux -L "$SOCK" -f /dev/null new-session -d -x 160 -y 40 -s w \
    "/usr/bin/time -f '%U %S' -o '$D/watch.time' '$BIN' watch --rules '$D/rules.jsonl' --input '$IN'; sleep 30"
  while ! tmux -L "$SOCK" capture-pane -p -t w | grep -q "input ended"; do sleep 0.05; done
  local t1=$(ms)
  tmux -L "$SOCK" send-keys -t w q
  while [ ! -s "$D/watch.time" ]; do sleep 0.05; done
  read -r u s < "$D/watch.time"
  echo "watch wall $(( t1 - t0 )) ms cpu (until q) $(echo "$u + $s" | bc) s"
  tmux -L "$SOCK" kill-server
}
for _ in $(seq "$ROUNDS"); do
  one_run run
  one_run run-analytics --analytics
  one_watch
done
