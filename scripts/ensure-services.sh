#!/usr/bin/env bash
# Makes sure the machine's Redis and PostgreSQL answer, starting them if they are down.
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
