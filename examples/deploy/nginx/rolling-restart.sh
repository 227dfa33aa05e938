#!/usr/bin/env bash
# Deploys without a hand-off: restarts the instances behind nginx (nginx.conf) one at a time. For each:
#   1. mark it `down` in NGINX_CONF and reload nginx, then wait until nginx's previous workers have exited:
#      from then on no request is on its way to this instance;
#   2. SIGTERM, and wait until it has drained and exited (examples/deploy/server.ts);
#   3. start it again and wait until GET /ready answers 200 (its Redis and inbox are connected);
#   4. mark it up again and reload.
# Stopping it without step 1 costs a hand-off now and then: a connection nginx opened just before the
# instance closed its listening socket is reset with the request already sent, and nginx retries no POST it
# sent. Without the wait in step 3, its first requests meet a store not connected yet: 500s.
#
#   START='node --import tsx examples/deploy/server.ts' NGINX_CONF=/etc/nginx/conf.d/hookguard.conf \
#     examples/deploy/nginx/rolling-restart.sh
#
# START runs in the background with PORT set; it must exec the server itself (node ..., not npm or npx,
# which may not pass SIGTERM on). Its pid goes to $RUN_DIR/<port>.pid, its output to $RUN_DIR/<port>.log.
# PORTS: the upstream's ports, each on one `server ...:<port> ...;` line of NGINX_CONF (default
# "3001 3002"; keep them below 32768, Linux's ephemeral range, or an outgoing connection may take a port
# while its instance restarts); NGINX_PID: nginx's pid file (default /run/nginx.pid; no nginx running: the
# file is only edited); TIMEOUT: seconds each wait may take (default 30). The first run starts them.
set -euo pipefail
: "${START:?set START to the command that runs one instance}"
: "${NGINX_CONF:?set NGINX_CONF to the file with the upstream block}"
PORTS=${PORTS:-3001 3002}
RUN_DIR=${RUN_DIR:-/run/hookguard}
NGINX_PID=${NGINX_PID:-/run/nginx.pid}
TIMEOUT=${TIMEOUT:-30}
mkdir -p "$RUN_DIR"

# A zombie counts as gone: its exit may have nobody to collect it.
alive() { local stat; stat=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $stat != Z* ]]; }
fail() { echo "rolling-restart: $*" >&2; exit 1; }

# Marks the upstream server on port $1 down (sed script $2) or up, reloads nginx and waits for the old workers.
set_server() {
  local line="^[[:space:]]*server[[:space:]]+[^[:space:];]+:$1[[:space:];]"
  [[ $(grep -cE "$line" "$NGINX_CONF") == 1 ]] || fail "expected one 'server ...:$1' line in $NGINX_CONF"
  sed -i -E "/$line/ { s/ down;/;/; $2 }" "$NGINX_CONF"
  [[ -s $NGINX_PID ]] && alive "$(<"$NGINX_PID")" || return 0
  local master old deadline=$((SECONDS + TIMEOUT))
  master=$(<"$NGINX_PID")
  old=$(ps -o pid= --ppid "$master" || true)
  kill -HUP "$master"
  # The old workers leave once they have answered what they hold; a bad config keeps them (nginx logs why).
  for pid in $old; do
    while alive "$pid"; do
      ((SECONDS < deadline)) || fail "nginx did not reload within ${TIMEOUT}s; check its error log"
      sleep 0.05
    done
  done
}

for port in $PORTS; do
  set_server "$port" 's/;/ down;/'
  pidfile="$RUN_DIR/$port.pid"
  if [[ -s $pidfile ]] && alive "$(<"$pidfile")"; then
    pid=$(<"$pidfile")
    kill -TERM "$pid"
    # The drain is bounded by the server itself (stopGracefully's timeoutMs, 10 s in server.ts).
    while alive "$pid"; do sleep 0.05; done
  fi
  PORT=$port nohup bash -c "exec $START" >>"$RUN_DIR/$port.log" 2>&1 &
  echo $! >"$pidfile"
  deadline=$((SECONDS + TIMEOUT))
  until curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/ready" 2>/dev/null; do
    # Stop here, this instance still marked down: the others go on serving.
    alive "$(<"$pidfile")" || fail "the instance on port $port exited; see $RUN_DIR/$port.log"
    ((SECONDS < deadline)) || fail "the instance on port $port is not ready after ${TIMEOUT}s"
    sleep 0.05
  done
  set_server "$port" ''
  echo "port $port: restarted (pid $(<"$pidfile"))"
done
