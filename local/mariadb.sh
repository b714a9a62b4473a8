#!/usr/bin/env bash
# Local stand-in for the per-environment RDS instances: one MariaDB server per
# environment, because every environment has its own RDS in real life and the
# tenant database names ({tenant}_db) repeat across environments.
#
#   local/mariadb.sh start|stop|status [env...]     (default: dev sit prod)
#
#   dev  -> 127.0.0.1:3307     sit -> 127.0.0.1:3308     prod -> 127.0.0.1:3309
#
# Data, socket, pid file and error log live in local/.state/mariadb/<env>/.
# root has no password and is reachable through the socket; local/seed.py
# creates the stepdeploy_master user that the Lambdas use over TCP.
# `status` exits 0 when every requested server is running, 3 otherwise.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE_ROOT="${SCRIPT_DIR}/.state/mariadb"
ALL_ENVS=(dev sit prod)
START_TIMEOUT=30
STOP_TIMEOUT=30

usage() {
    echo "usage: $(basename "$0") start|stop|status [dev|sit|prod ...]" >&2
    exit 2
}

die() {
    echo "mariadb: $*" >&2
    exit 1
}

port_of() {
    case "$1" in
        dev) echo 3307 ;;
        sit) echo 3308 ;;
        prod) echo 3309 ;;
        *) die "unknown environment '$1' (expected dev, sit or prod)" ;;
    esac
}

# Sets the per-environment paths used by the commands below.
load_env() {
    ENV_NAME="$1"
    PORT="$(port_of "$ENV_NAME")"
    DIR="${STATE_ROOT}/${ENV_NAME}"
    DATADIR="${DIR}/data"
    SOCKET="${DIR}/mysqld.sock"
    PIDFILE="${DIR}/mysqld.pid"
    LOGFILE="${DIR}/mysqld.log"
}

# Prints the server pid if its pid file points at a live mariadbd, else nothing.
running_pid() {
    local pid
    [[ -f "$PIDFILE" ]] || return 0
    pid="$(tr -dc '0-9' <"$PIDFILE")"
    [[ -n "$pid" ]] || return 0
    if kill -0 "$pid" 2>/dev/null && [[ "$(cat "/proc/${pid}/comm" 2>/dev/null)" == mariadbd ]]; then
        echo "$pid"
    fi
}

answers_ping() {
    mariadb-admin --no-defaults --socket="$SOCKET" --user=root \
        --connect-timeout=2 ping >/dev/null 2>&1
}

log_tail() {
    if [[ -f "$LOGFILE" ]]; then
        echo "--- last lines of ${LOGFILE} ---" >&2
        tail -n 25 "$LOGFILE" >&2
    fi
}

init_datadir() {
    mkdir -p "$DATADIR"
    if [[ -d "${DATADIR}/mysql" ]]; then
        return 0
    fi
    if [[ -n "$(ls -A "$DATADIR")" ]]; then
        die "${ENV_NAME}: ${DATADIR} is neither empty nor initialised; remove it and retry"
    fi
    echo "mariadb ${ENV_NAME}: initialising ${DATADIR}"
    if ! mariadb-install-db --no-defaults --user=root --datadir="$DATADIR" \
        --auth-root-authentication-method=normal --skip-test-db \
        >"${DIR}/install-db.log" 2>&1; then
        tail -n 25 "${DIR}/install-db.log" >&2
        die "${ENV_NAME}: mariadb-install-db failed (full output in ${DIR}/install-db.log)"
    fi
}

start_env() {
    load_env "$1"
    local pid waited=0
    pid="$(running_pid)"
    if [[ -n "$pid" ]]; then
        echo "mariadb ${ENV_NAME} already running on 127.0.0.1:${PORT} (pid ${pid})"
        return 0
    fi
    mkdir -p "$DIR"
    rm -f "$PIDFILE" "$SOCKET"
    init_datadir
    # setsid + nohup: the server is a daemon and must outlive this shell and its
    # process group; stop_env is the way to end it. -w keeps $! tied to mariadbd
    # even if setsid has to fork.
    setsid -w nohup mariadbd --no-defaults --user=root --datadir="$DATADIR" \
        --bind-address=127.0.0.1 --port="$PORT" --socket="$SOCKET" \
        --pid-file="$PIDFILE" --skip-name-resolve --log-error="$LOGFILE" \
        </dev/null >>"${DIR}/stdout.log" 2>&1 &
    local launcher=$!
    until answers_ping; do
        if ! kill -0 "$launcher" 2>/dev/null; then
            log_tail
            die "${ENV_NAME}: mariadbd exited during startup (port ${PORT} taken?)"
        fi
        if ((waited >= START_TIMEOUT * 2)); then
            log_tail
            die "${ENV_NAME}: no answer on ${SOCKET} after ${START_TIMEOUT}s" \
                "(server pid ${launcher} left running; run '$0 stop ${ENV_NAME}')"
        fi
        sleep 0.5
        waited=$((waited + 1))
    done
    echo "mariadb ${ENV_NAME} ready on 127.0.0.1:${PORT}"
}

stop_env() {
    load_env "$1"
    local pid waited=0
    pid="$(running_pid)"
    if [[ -z "$pid" ]]; then
        rm -f "$PIDFILE" "$SOCKET"
        echo "mariadb ${ENV_NAME} not running"
        return 0
    fi
    if ! mariadb-admin --no-defaults --socket="$SOCKET" --user=root shutdown >/dev/null 2>&1; then
        echo "mariadb ${ENV_NAME}: shutdown over the socket failed, sending SIGTERM to ${pid}" >&2
        kill -TERM "$pid" 2>/dev/null || true
    fi
    while kill -0 "$pid" 2>/dev/null; do
        if ((waited >= STOP_TIMEOUT * 2)); then
            log_tail
            die "${ENV_NAME}: pid ${pid} still alive after ${STOP_TIMEOUT}s"
        fi
        sleep 0.5
        waited=$((waited + 1))
    done
    rm -f "$PIDFILE" "$SOCKET"
    echo "mariadb ${ENV_NAME} stopped"
}

# Returns 0 when running so `status` can report an overall exit code.
status_env() {
    load_env "$1"
    local pid
    pid="$(running_pid)"
    if [[ -z "$pid" ]]; then
        echo "mariadb ${ENV_NAME} stopped"
        return 1
    fi
    if answers_ping; then
        echo "mariadb ${ENV_NAME} running on 127.0.0.1:${PORT} (pid ${pid})"
        return 0
    fi
    echo "mariadb ${ENV_NAME} running (pid ${pid}) but not answering on ${SOCKET}"
    return 1
}

main() {
    (($# >= 1)) || usage
    local action="$1" env rc=0
    shift
    local envs=("$@")
    ((${#envs[@]} > 0)) || envs=("${ALL_ENVS[@]}")
    for env in "${envs[@]}"; do
        port_of "$env" >/dev/null
    done
    case "$action" in
        start) for env in "${envs[@]}"; do start_env "$env"; done ;;
        stop) for env in "${envs[@]}"; do stop_env "$env"; done ;;
        status)
            for env in "${envs[@]}"; do status_env "$env" || rc=3; done
            return "$rc"
            ;;
        *) usage ;;
    esac
}

main "$@"
