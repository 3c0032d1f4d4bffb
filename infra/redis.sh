#!/usr/bin/env bash
# Local Redis (Debian's redis-server) on loopback, persistence in .infra-data/redis.
#   infra/redis.sh install | start | stop | status | logs
# Port: JOBTRAIL_REDIS_PORT (6379).
source "$(dirname "$0")/common.sh"

DIR=$INFRA_DIR/redis
PIDFILE=$DIR/redis.pid
LOGFILE=$DIR/redis.log
PORT=${JOBTRAIL_REDIS_PORT:-6379}

install() { apt_install redis-server redis-server; apt_install redis-tools redis-cli; }

healthy() { redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG; }

start() {
  install
  if pid_alive "$PIDFILE"; then wait_for "redis on 127.0.0.1:$PORT" 30 healthy; return; fi
  port_open "$PORT" && die "port $PORT is taken by another process; set JOBTRAIL_REDIS_PORT"
  mkdir -p "$DIR"
  # appendonly: projections treat Redis as durable once a write is acknowledged.
  redis-server --bind 127.0.0.1 --port "$PORT" --dir "$DIR" --daemonize yes \
    --pidfile "$PIDFILE" --logfile "$LOGFILE" --appendonly yes --appendfsync everysec \
    --save "" --protected-mode yes
  wait_for "redis on 127.0.0.1:$PORT" 30 healthy || die "redis did not start; see $LOGFILE"
}

service_main redis "127.0.0.1:$PORT" "$@"
