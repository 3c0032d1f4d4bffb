#!/usr/bin/env bash
# Local Couchbase test server: CouchbaseMock (Couchbase's Java mock server), one node, one bucket.
#   infra/couchbase.sh install | start | stop | status | logs
# The mock is pinned in infra/couchbase/pom.xml and resolved from Maven Central with Maven; the
# launcher infra/couchbase/JobtrailCouchbaseMock.java gives it fixed ports and CCCP bootstrap.
# (gocaves, the Go mock, cannot be fetched from the Go module proxy reachable here.)
# Ports: JOBTRAIL_COUCHBASE_PORT (11210, KV: the SDK connects here),
#        JOBTRAIL_COUCHBASE_HTTP_PORT (8091, REST). The mock binds them on all interfaces.
# Bucket: JOBTRAIL_COUCHBASE_BUCKET (default); only its _default scope/collection exist.
# Strict (JOBTRAIL_COUCHBASE_STRICT, default 1): the launcher refuses what Couchbase Server refuses
#   and the mock accepts (over 16 sub-document specs, keys over 250 bytes, documents over 20 MiB,
#   non-strict JSON such as NaN), so the tests catch a store that would fail in production.
# Credentials: Administrator / password. Data lives in memory only: a restart empties the bucket.
# `start` writes the connection string to .infra-data/couchbase/connstr and KEY=VALUE settings
# (connstr, username, password, bucket) to .infra-data/couchbase/env for test fixtures.
source "$(dirname "$0")/common.sh"

DIR=$INFRA_DIR/couchbase
LIBS=$DIR/libs
CLASSES=$DIR/classes
PIDFILE=$DIR/couchbase.pid
LOGFILE=$DIR/couchbase.log
PORT=${JOBTRAIL_COUCHBASE_PORT:-11210}
HTTP_PORT=${JOBTRAIL_COUCHBASE_HTTP_PORT:-8091}
BUCKET=${JOBTRAIL_COUCHBASE_BUCKET:-default}
STRICT_FLAG=$([ "${JOBTRAIL_COUCHBASE_STRICT:-1}" = 1 ] && echo --strict || true)
USERNAME=Administrator
PASSWORD=password
POM=$REPO_ROOT/infra/couchbase/pom.xml
LAUNCHER=$REPO_ROOT/infra/couchbase/JobtrailCouchbaseMock.java
CONNSTR="couchbase://127.0.0.1:$PORT"

install() {
  # The stamp records which pom and launcher the build came from, so a change rebuilds it.
  local stamp; stamp=$(cat "$POM" "$LAUNCHER" | sha256sum | cut -c1-16)
  if [ -f "$DIR/.stamp" ] && [ "$(cat "$DIR/.stamp")" = "$stamp" ]; then return 0; fi
  command -v java >/dev/null || die "java (11+) is required for the Couchbase mock"
  command -v javac >/dev/null || apt_install default-jdk-headless javac
  command -v mvn >/dev/null || apt_install maven mvn
  log "resolving CouchbaseMock from Maven Central (infra/couchbase/pom.xml)"
  rm -rf "$LIBS" "$CLASSES"
  mkdir -p "$DIR"
  mvn -q -B -f "$POM" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIBS" \
    || die "maven could not resolve CouchbaseMock"
  javac -d "$CLASSES" -cp "$LIBS/*" "$LAUNCHER" || die "could not compile $LAUNCHER"
  echo "$stamp" > "$DIR/.stamp"
}

bucket_config() {
  curl -fsS -u "$USERNAME:$PASSWORD" "http://127.0.0.1:$HTTP_PORT/pools/default/buckets/$BUCKET" 2>/dev/null
}

# Up when the REST API serves the bucket's config and the KV port named in it accepts connections.
healthy() { pid_alive "$PIDFILE" && port_open "$PORT" && bucket_config | grep -q "\"direct\":$PORT"; }

write_settings() {
  printf '%s\n' "$CONNSTR" > "$DIR/connstr"
  cat > "$DIR/env" <<ENV
JOBTRAIL_COUCHBASE_CONNSTR=$CONNSTR
JOBTRAIL_COUCHBASE_USERNAME=$USERNAME
JOBTRAIL_COUCHBASE_PASSWORD=$PASSWORD
JOBTRAIL_COUCHBASE_BUCKET=$BUCKET
ENV
}

start() {
  install
  if pid_alive "$PIDFILE"; then
    wait_for "couchbase mock on $CONNSTR" 30 healthy || die "couchbase mock is running but not healthy; see $LOGFILE"
    write_settings
    return 0
  fi
  port_open "$PORT" && die "port $PORT is taken by another process; set JOBTRAIL_COUCHBASE_PORT"
  port_open "$HTTP_PORT" && die "port $HTTP_PORT is taken by another process; set JOBTRAIL_COUCHBASE_HTTP_PORT"
  rm -f "$DIR/connstr" "$DIR/env"
  : > "$LOGFILE"
  log "starting couchbase mock (logs: $LOGFILE)"
  nohup java -Xms64m -Xmx512m -cp "$LIBS/*:$CLASSES" JobtrailCouchbaseMock \
    127.0.0.1 "$HTTP_PORT" "$PORT" "$BUCKET" $STRICT_FLAG >>"$LOGFILE" 2>&1 &
  echo $! > "$PIDFILE"
  if ! wait_for "couchbase mock on $CONNSTR" 60 healthy; then
    tail -n 30 "$LOGFILE" >&2; stop_pidfile couchbase "$PIDFILE"; die "couchbase mock did not start"
  fi
  write_settings
}

stop() { stop_pidfile couchbase "$PIDFILE"; rm -f "$DIR/connstr" "$DIR/env"; }

service_main couchbase "$CONNSTR (bucket $BUCKET)" "$@"
