#!/usr/bin/env bash
# Start or stop a private RabbitMQ node for tests and the demo, in its own folder, on loopback
# ports given by the caller: nothing is shared with a system RabbitMQ.
#   rabbitmq.sh start DIR AMQP_PORT DIST_PORT EPMD_PORT [TLS_PORT]
#   rabbitmq.sh stop DIR
#   rabbitmq.sh ctl DIR ARGS...      (rabbitmqctl against that node)
set -euo pipefail

RABBIT_BIN=/usr/lib/rabbitmq/bin

node_env() {
    local dir=$1
    # shellcheck source=/dev/null
    source "$dir/ports.env"
    export HOME="$dir" \
        RABBITMQ_NODENAME="rabbit_$AMQP_PORT@localhost" \
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
        RABBITMQ_NODE_PORT="$AMQP_PORT" \
        RABBITMQ_DIST_PORT="$DIST_PORT" \
        ERL_EPMD_PORT="$EPMD_PORT" \
        ERL_EPMD_ADDRESS=127.0.0.1 \
        RABBITMQ_BASE="$dir" \
        RABBITMQ_MNESIA_BASE="$dir/mnesia" \
        RABBITMQ_LOG_BASE="$dir/log" \
        RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" \
        RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config" \
        RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
        RABBITMQ_PID_FILE="$dir/rabbitmq.pid"
}

start() {
    local dir=$1
    mkdir -p "$dir/log"
    printf 'AMQP_PORT=%s\nDIST_PORT=%s\nEPMD_PORT=%s\n' "$2" "$3" "$4" > "$dir/ports.env"
    cat > "$dir/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$2
loopback_users = none
default_user = guest
default_pass = guest
CONF
    echo '[].' > "$dir/enabled_plugins"
    [ -z "${5:-}" ] || tls_listener "$dir" "$5"
    : > "$dir/rabbitmq-env.conf"
    node_env "$dir"
    "$RABBIT_BIN/rabbitmq-server" >> "$dir/log/server.out" 2>&1 &
    if ! "$RABBIT_BIN/rabbitmqctl" wait --timeout 90 "$RABBITMQ_PID_FILE" > "$dir/log/wait.out" 2>&1; then
        echo "RabbitMQ did not start; see $dir/log" >&2
        tail -20 "$dir/log/server.out" >&2 || true
        exit 1
    fi
    [ -z "${5:-}" ] || certificate_user "$dir"
}

# With a TLS port: certificates from make-certs.sh in DIR/tls, a TLS listener that asks for (but
# does not require) a client certificate, and EXTERNAL login taking the user name from the
# certificate's common name.
TLS_CLIENT_CN=erh-client

tls_listener() {
    local dir=$1 tls=$1/tls
    "$(dirname "$0")/make-certs.sh" "$tls" "$TLS_CLIENT_CN"
    cat >> "$dir/rabbitmq.conf" <<CONF
listeners.ssl.default = 127.0.0.1:$2
ssl_options.cacertfile = $tls/ca.pem
ssl_options.certfile = $tls/server.pem
ssl_options.keyfile = $tls/server.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = false
auth_mechanisms.1 = EXTERNAL
auth_mechanisms.2 = PLAIN
auth_mechanisms.3 = AMQPLAIN
ssl_cert_login_from = common_name
CONF
    echo '[rabbitmq_auth_mechanism_ssl].' > "$dir/enabled_plugins"
}

# The user EXTERNAL logs in as: no password, so only the certificate lets it in.
certificate_user() {
    local ctl=("$RABBIT_BIN/rabbitmqctl" --quiet)
    {
        "${ctl[@]}" add_user "$TLS_CLIENT_CN" "unused-$RANDOM$RANDOM"
        "${ctl[@]}" clear_password "$TLS_CLIENT_CN"
        "${ctl[@]}" set_permissions -p / "$TLS_CLIENT_CN" '.*' '.*' '.*'
    } > "$1/log/users.out" 2>&1
}

stop() {
    local dir=$1
    [ -f "$dir/ports.env" ] || return 0
    node_env "$dir"
    "$RABBIT_BIN/rabbitmqctl" stop "$RABBITMQ_PID_FILE" > /dev/null 2>&1 || true
    # epmd was started for this node's private port (ERL_EPMD_PORT): stop it too.
    epmd -kill > /dev/null 2>&1 || true
}

case "${1:-}" in
start) start "$2" "$3" "$4" "$5" "${6:-}" ;;
stop) stop "$2" ;;
ctl)
    dir=$2
    shift 2
    node_env "$dir"
    "$RABBIT_BIN/rabbitmqctl" "$@"
    ;;
*)
    echo "usage: $0 start DIR AMQP_PORT DIST_PORT EPMD_PORT [TLS_PORT] | stop DIR | ctl DIR ARGS..." >&2
    exit 2
    ;;
esac
