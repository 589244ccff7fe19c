#!/usr/bin/env bash
# Runs progval/irctest (the IRC conformance suite) against chatroom's IRC front end.
# usage: benchmarks/irctest/run.sh [pytest args...]   e.g. -k Join, or -x
# env: IRCTEST_DIR (a checkout of irctest; default: cloned into /tmp/chatroom-irctest),
#      IRCTEST_VENV (its venv, apart from the project's; default /tmp/chatroom-irctest-venv),
#      IRCTEST_REF (what to check out when cloning; default: the upstream head),
#      CHATROOM_TWISTD (default: this checkout's .venv/bin/twistd).
# Prints pytest's summary; the whole report goes to $IRCTEST_DIR/chatroom-report.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${IRCTEST_DIR:-/tmp/chatroom-irctest}
venv=${IRCTEST_VENV:-/tmp/chatroom-irctest-venv}
if [ ! -d "$dir/irctest" ]; then
  git clone --quiet https://github.com/progval/irctest "$dir"
  [ -z "${IRCTEST_REF:-}" ] || git -C "$dir" checkout --quiet "$IRCTEST_REF"
fi
if [ ! -x "$venv/bin/pytest" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r "$dir/requirements.txt"
fi
echo "irctest $(git -C "$dir" rev-parse --short HEAD) against chatroom ($(git -C "$here" rev-parse --short HEAD))"
# The markers irctest's Makefile uses for servers it does not special-case: no other
# implementation's own tests, nothing deprecated, nothing stricter than the specifications.
cd "$dir"
PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" timeout -k 10 1800 "$venv/bin/pytest" \
  --controller chatroom_controller -p no:cacheprovider -q -rfEs \
  -m 'not implementation-specific and not deprecated and not strict' "$@" \
  2>&1 | tee "$dir/chatroom-report.txt" | tail -n 400
