#!/usr/bin/env bash
# Makes sure the machine's Redis and PostgreSQL answer, starting them if they are down, and that nginx is
# installed (test/deploy/nginx.test.ts runs a private nginx of its own; none is started here).
set -u
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }

if ! redis_up; then
  echo "Redis is down: starting it"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
fi
if ! pg_up; then
  echo "PostgreSQL is down: starting it"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
fi
# Debian's nginx-light (plain `nginx` where a release has no -light). Installed without starting the
# system service (policy-rc.d 101, as in Docker images): the test must not meet a system nginx. A failure
# is reported, not fatal here: the nginx test then fails in CI and says why.
install_nginx() {
  local policy=/usr/sbin/policy-rc.d added=''
  if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added=1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq &&
    { apt-get install -y -qq nginx-light || apt-get install -y -qq nginx; } </dev/null >/dev/null
  local status=$?
  [[ -n $added ]] && rm -f "$policy"
  return $status
}
if ! command -v nginx >/dev/null 2>&1 && [[ ! -x /usr/sbin/nginx ]]; then
  echo "nginx is missing: installing nginx-light"
  if install_nginx; then
    echo "nginx installed: $(/usr/sbin/nginx -v 2>&1)"
  else
    echo "could not install nginx-light (apt-get failed): test/deploy/nginx.test.ts needs nginx"
  fi
fi

for _ in $(seq 1 30); do
  if redis_up && pg_up; then
    echo "Redis and PostgreSQL are up"
    exit 0
  fi
  sleep 1
done
redis_up || echo "Redis did not come up on 127.0.0.1:6379"
pg_up || echo "PostgreSQL did not come up on 127.0.0.1:5432"
exit 1
