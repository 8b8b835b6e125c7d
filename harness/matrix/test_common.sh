# Sourced by matrix_test.sh and matrix_oracle_test.sh (bin and repo set): a temporary
# directory removed on exit, the handson SASL user, render CONFIG (a testdata/configs template
# into $tmp/CONFIG with render_config.sh) and fail.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/relaylab_matrix.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
auth="--auth-user smtp-auth@example.com --auth-password relay-pass-1"
render() { sh "$repo/harness/matrix/render_config.sh" "$bin" "$repo/testdata/configs/$1" "$tmp/$1"; }
fail() { echo "FAIL: $*"; exit 1; }
