#!/usr/bin/env bash
# Local Prometheus (Debian's prometheus package) on loopback, scraping jobtrail components as
# configured in infra/prometheus/prometheus.yml, with the alert rules beside it.
#   infra/prometheus.sh install | start | stop | status | logs
# Port: JOBTRAIL_PROMETHEUS_PORT (9090).
source "$(dirname "$0")/common.sh"

DIR=$INFRA_DIR/prometheus
PIDFILE=$DIR/prometheus.pid
LOGFILE=$DIR/prometheus.log
PORT=${JOBTRAIL_PROMETHEUS_PORT:-9090}
CONFIG=$REPO_ROOT/infra/prometheus/prometheus.yml

install() { apt_install prometheus prometheus; }

healthy() { curl -fsS "http://127.0.0.1:$PORT/-/ready" >/dev/null 2>&1; }

start() {
  install
  if pid_alive "$PIDFILE"; then wait_for "prometheus on 127.0.0.1:$PORT" 30 healthy; return; fi
  port_open "$PORT" && die "port $PORT is taken by another process; set JOBTRAIL_PROMETHEUS_PORT"
  mkdir -p "$DIR/data"
  nohup prometheus --config.file="$CONFIG" --storage.tsdb.path="$DIR/data" \
    --web.listen-address="127.0.0.1:$PORT" --web.enable-lifecycle >>"$LOGFILE" 2>&1 &
  echo $! > "$PIDFILE"
  wait_for "prometheus on 127.0.0.1:$PORT" 60 healthy || { tail -n 20 "$LOGFILE" >&2; die "prometheus did not start"; }
}

service_main prometheus "http://127.0.0.1:$PORT" "$@"
