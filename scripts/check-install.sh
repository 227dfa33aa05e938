#!/usr/bin/env bash
# The README's "Installing before it is on the registry", checked: a new project installs hookguard from a
# packed tarball and from a git URL (this repository at HEAD), and both copies load and answer. CI runs it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
quiet=(--no-audit --no-fund --loglevel=error)

check() { # $1: project directory
  (cd "$1" && node -e "
    const { verifyChatwootSignature } = require('hookguard');
    const { signChatwootPayload, chatwootEvent } = require('hookguard/testing');
    const s = signChatwootPayload(chatwootEvent('message_created'), 'k');
    if (verifyChatwootSignature(s.body, s.headers, { secret: 'k' }).secretIndex !== 0) process.exit(1);
  " && node --input-type=module -e "import { chatwootWebhook } from 'hookguard/express'; if (typeof chatwootWebhook !== 'function') process.exit(1);" \
    && npx --no-install hookguard --version >/dev/null)
}

echo "from a packed tarball"
mkdir "$work/tarball"
(cd "$repo" && npm pack --silent --pack-destination "$work" >/dev/null)
(cd "$work/tarball" && npm init -y >/dev/null && npm install "${quiet[@]}" "$work"/hookguard-*.tgz)
check "$work/tarball"

echo "from a git URL (git+file://…#HEAD; the same for github:owner/hookguard#main)"
mkdir "$work/git"
(cd "$work/git" && npm init -y >/dev/null && npm install "${quiet[@]}" "git+file://$repo#$(git -C "$repo" rev-parse HEAD)")
[ -f "$work/git/node_modules/hookguard/dist/index.js" ] || { echo "no dist/ after a git install"; exit 1; }
check "$work/git"
echo "install from tarball and git URL: ok"
