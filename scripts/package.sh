#!/usr/bin/env bash
# Build the plugin packages from the compiled application (make: NIF + rebar3 compile).
#   package.sh emqx4   _build/packages/emqx_rabbitmq_hook-<vsn>-emqx4.tar.gz
#                      emqx_rabbitmq_hook/{ebin,priv,etc}: unpack into EMQX 4's plugins directory
#                      (plugins.expand_plugins_dir), then `emqx_ctl plugins load emqx_rabbitmq_hook`.
#   package.sh emqx5   _build/packages/emqx_rabbitmq_hook-<vsn>.tar.gz
#                      emqx_rabbitmq_hook-<vsn>/{release.json,README.md,emqx_rabbitmq_hook-<vsn>/}
#                      in EMQX 5's plugin format (emqx_plugins: release.json with name, rel_vsn,
#                      rel_apps, description; with_config_schema makes EMQX 5.7+ manage
#                      priv/config.hocon against priv/config_schema.avsc).
# The NIF and the beams work on the OTP release they were built with: build on the OTP of the
# EMQX release the package is for (release.json says which, built_on_otp_release).
set -euo pipefail

app=emqx_rabbitmq_hook
root=$(cd "$(dirname "$0")/.." && pwd)
lib="$root/_build/default/lib/$app"
out="$root/_build/packages"

[ -f "$lib/ebin/$app.app" ] && [ -f "$root/priv/${app}_nif.so" ] || {
    echo "build first (make)" >&2
    exit 1
}

erl_eval() { erl -noshell -eval "$1, halt()."; }
vsn=$(erl_eval "{ok, [{application, _, P}]} = file:consult(\"$lib/ebin/$app.app\"), io:put_chars(proplists:get_value(vsn, P))")
description=$(erl_eval "{ok, [{application, _, P}]} = file:consult(\"$lib/ebin/$app.app\"), io:put_chars(proplists:get_value(description, P))")
otp=$(erl_eval 'io:put_chars(erlang:system_info(otp_release))')

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$out"

# The application directory: every beam and the .app (it lists every module), the NIF, and the
# configuration files the given EMQX line reads.
copy_app() {
    local dir=$1
    shift
    mkdir -p "$dir/ebin" "$dir/priv"
    cp "$lib"/ebin/*.beam "$lib/ebin/$app.app" "$dir/ebin/"
    cp "$root/priv/${app}_nif.so" "$dir/priv/"
    for f in "$@"; do cp "$root/priv/$f" "$dir/priv/"; done
}

case "${1:-}" in
emqx4)
    copy_app "$stage/$app" "$app.schema"
    mkdir -p "$stage/$app/etc"
    cp "$root/etc/$app.conf" "$stage/$app/etc/"
    tarball="$out/$app-$vsn-emqx4.tar.gz"
    tar -czf "$tarball" -C "$stage" "$app"
    ;;
emqx5)
    rel="$app-$vsn"
    copy_app "$stage/$rel/$app-$vsn" config.hocon config_schema.avsc
    cp "$root/README.md" "$stage/$rel/"
    git_ref=$(git -C "$root" rev-parse HEAD 2> /dev/null || echo unknown)
    cat > "$stage/$rel/release.json" <<JSON
{
    "name": "$app",
    "rel_vsn": "$vsn",
    "rel_apps": ["$app-$vsn"],
    "description": "$description",
    "authors": ["emqx_rabbitmq_hook authors"],
    "builder": {"name": "emqx_rabbitmq_hook", "contact": "", "website": ""},
    "repo": "",
    "functionality": ["Data bridge"],
    "compatibility": {"emqx": "~>5.0"},
    "git_ref": "$git_ref",
    "git_commit_or_build_date": "$(date -u +%Y-%m-%d)",
    "metadata_vsn": "0.2.0",
    "built_on_otp_release": "$otp",
    "with_config_schema": true
}
JSON
    tarball="$out/$rel.tar.gz"
    tar -czf "$tarball" -C "$stage" "$rel"
    sha256sum "$tarball" | cut -d' ' -f1 > "$out/$rel.sha256"
    ;;
*)
    echo "usage: $0 emqx4 | emqx5" >&2
    exit 2
    ;;
esac
echo "$tarball"
