#!/usr/bin/env bash
# Installs what the channel tests talk to, idempotently, outside the clone:
#   - a Python virtualenv with the peers in requirements.txt (slack_sdk, PyNaCl, dkimpy, ...);
#   - the local mail stack (Postfix + Dovecot on loopback), when mail-stack.sh is present.
# Prints the environment the tests read (eval "$(deploy/peers/setup.sh)").
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${PEERS_DIR:-/var/cache/frontdesk/peers}"
venv="$cache/venv"
mkdir -p "$cache"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
stamp="$cache/requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
  echo "$want" > "$stamp"
fi
echo "export PEER_PYTHON=$venv/bin/python"
if [ -x "$here/mail-stack.sh" ]; then
  # Logs go to stderr; the stack prints the `export ...` lines the mail tests read.
  "$here/mail-stack.sh" start
fi
