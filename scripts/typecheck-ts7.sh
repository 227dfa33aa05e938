#!/usr/bin/env bash
# Type-checks with TypeScript 7 (`typescript@7` on npm: the native compiler, a `tsc` bin that runs a Go
# binary) beside the project's TypeScript 5.9: the project itself (tsconfig.json: src, the tests with their
# expectTypeOf type tests, examples, scripts, bench), then every tsconfig given as an argument (.ci/run
# passes the README and TSDoc snippets' one, which `npm run check:snippets` leaves in .tmp/snippets).
#
# TypeScript 7 goes into a cache folder of its own, not into the project: as a devDependency (even under an
# alias) its `tsc` bin would replace TypeScript 5.9's in node_modules/.bin.
#
# Usage: bash scripts/typecheck-ts7.sh [tsconfig...]
set -uo pipefail
cd "$(dirname "$0")/.."

CACHE="${HOOKGUARD_TS7_CACHE:-node_modules/.cache/hookguard-typescript7}"
tsc="$CACHE/node_modules/typescript/bin/tsc"
if [ ! -x "$tsc" ]; then
  mkdir -p "$CACHE"
  npm install --prefix "$CACHE" --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
    'typescript@^7.0.2' || exit 1
fi
echo "TypeScript $(node "$tsc" --version | sed 's/^Version //')"

status=0
for config in tsconfig.json "$@"; do
  if [ ! -f "$config" ]; then
    echo "$config: missing"
    status=1
    continue
  fi
  start=$SECONDS
  if node "$tsc" --noEmit -p "$config"; then
    echo "$config: no errors ($((SECONDS - start)) s)"
  else
    echo "$config: errors under TypeScript 7 (above)"
    status=1
  fi
done
exit $status
