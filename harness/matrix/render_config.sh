#!/bin/sh
# render_config.sh RELAYLAB TEMPLATE DEST: renders a testdata/configs/<name> template into DEST
# the way tests/oracle does (placeholders filled, loopback ports 25/587/465, sasldb made from
# the template's `users` file with `relaylab sasldb set`), for `relaylab matrix` tests and docs.
set -eu
bin=$1 template=$2 dest=$3
mkdir -p "$dest" "$dest.run"
(cd "$template" && find . -type d) | while read -r d; do mkdir -p "$dest/$d"; done
(cd "$template" && find . -type f) | while read -r f; do
  sed -e "s|@DIR@|$dest.run|g" -e "s|@CONFIG_DIR@|$dest|g" -e "s|@PORT_SMTP@|25|g" \
      -e "s|@PORT_SUBMISSION@|587|g" -e "s|@PORT_SMTPS@|465|g" -e "s|@PORT_AUTHONLY@|2587|g" \
      -e "s|@PORT_SINK@|2525|g" -e "s|@TLS_DIR@|$(dirname "$(dirname "$template")")/tls|g" \
      "$template/$f" >"$dest/$f"
done
if [ -f "$template/users" ]; then
  grep -v '^#' "$template/users" | while read -r user realm password; do
    [ -n "$user" ] || continue
    printf '%s\n' "$password" | "$bin" sasldb set -f "$dest/sasldb2" -u "$realm" "$user"
  done
fi
