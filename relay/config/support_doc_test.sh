#!/bin/sh
# CTest: the table in docs/relay.md is what relaylab_support_doc prints from support.inc.
# Usage: support_doc_test.sh RELAYLAB_SUPPORT_DOC DOCS_RELAY_MD
set -u
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$1" >"$tmp/want" || { echo "FAIL: $1 failed"; exit 1; }
awk '/^<!-- support-table end/ { keep = 0 } keep { print } /^<!-- support-table begin/ { keep = 1 }' \
  "$2" >"$tmp/got"
if ! diff -u "$tmp/got" "$tmp/want" >"$tmp/diff"; then
  head -40 "$tmp/diff"
  echo "FAIL: docs/relay.md's parameter table disagrees with relay/config/support.inc;"
  echo "      run relay/config/gen-support-doc BUILD_DIR"
  exit 1
fi
echo "ok: docs table matches support.inc"
