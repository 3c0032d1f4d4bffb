#!/usr/bin/env bash
# Local single-node Kafka (KRaft, broker + controller in one process) on loopback.
#   infra/kafka.sh install | start | stop | status | logs | reset
# The release is pinned in infra/kafka/pom.xml and resolved from Maven Central with Maven.
# Ports: JOBTRAIL_KAFKA_PORT (9092, clients), JOBTRAIL_KAFKA_CONTROLLER_PORT (9093),
# JOBTRAIL_KAFKA_SASL_PORT (9094: clients with SASL/PLAIN, user jobtrail, password
# JOBTRAIL_KAFKA_SASL_PASSWORD, default jobtrail-secret: what the security tests connect to).
source "$(dirname "$0")/common.sh"

KAFKA_DIR=$INFRA_DIR/kafka
LIBS=$KAFKA_DIR/libs
DATA=$KAFKA_DIR/data
PIDFILE=$KAFKA_DIR/kafka.pid
LOGFILE=$KAFKA_DIR/kafka.log
PORT=${JOBTRAIL_KAFKA_PORT:-9092}
CONTROLLER_PORT=${JOBTRAIL_KAFKA_CONTROLLER_PORT:-9093}
SASL_PORT=${JOBTRAIL_KAFKA_SASL_PORT:-9094}
SASL_PASSWORD=${JOBTRAIL_KAFKA_SASL_PASSWORD:-jobtrail-secret}
POM=$REPO_ROOT/infra/kafka/pom.xml

install() {
  # The stamp records which pom the jars came from, so a version bump re-resolves them.
  local stamp; stamp=$(sha256sum "$POM" | cut -c1-16)
  if [ -f "$LIBS/.stamp" ] && [ "$(cat "$LIBS/.stamp")" = "$stamp" ]; then return 0; fi
  command -v java >/dev/null || die "java (17+) is required for Kafka"
  command -v mvn >/dev/null || apt_install maven mvn
  log "resolving Kafka jars from Maven Central (infra/kafka/pom.xml)"
  rm -rf "$LIBS"
  mvn -q -B -f "$POM" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIBS" \
    || die "maven could not resolve the Kafka jars"
  echo "$stamp" > "$LIBS/.stamp"
}

write_config() {
  mkdir -p "$KAFKA_DIR"
  cat > "$KAFKA_DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT,SASL_PLAINTEXT://127.0.0.1:$SASL_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT,SASL_PLAINTEXT://127.0.0.1:$SASL_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_jobtrail="$SASL_PASSWORD";
log.dirs=$DATA
num.partitions=6
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=12
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
min.insync.replicas=1
# Topics are created explicitly by 'jobtrail topics apply' from the catalog.
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
log.retention.check.interval.ms=60000
PROPS
  cat > "$KAFKA_DIR/log4j.properties" <<PROPS
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$LOGFILE
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.state.change.logger=WARN
PROPS
}

java_run() {
  java -Xms512m -Xmx1g -XX:+UseG1GC -Dlog4j.configuration="file:$KAFKA_DIR/log4j.properties" \
    -cp "$LIBS/*" "$@"
}

healthy() {
  pid_alive "$PIDFILE" && port_open "$PORT" && grep -q "Kafka Server started" "$LOGFILE" 2>/dev/null
}

start() {
  install
  if pid_alive "$PIDFILE"; then
    wait_for "kafka on 127.0.0.1:$PORT" 60 healthy || die "kafka is running but not healthy; see $LOGFILE"
    return 0
  fi
  port_open "$PORT" && die "port $PORT is taken by another process; set JOBTRAIL_KAFKA_PORT"
  write_config
  if [ ! -f "$DATA/meta.properties" ]; then
    log "formatting KRaft storage in $DATA"
    # Static quorum (controller.quorum.voters), so a plain format with a fresh cluster id.
    java_run kafka.tools.StorageTool format -t "$(java_run kafka.tools.StorageTool random-uuid)" \
      -c "$KAFKA_DIR/server.properties" >/dev/null || die "kafka storage format failed"
  fi
  : > "$LOGFILE"
  log "starting kafka (logs: $LOGFILE)"
  nohup java -Xms512m -Xmx1g -XX:+UseG1GC -Dlog4j.configuration="file:$KAFKA_DIR/log4j.properties" \
    -cp "$LIBS/*" kafka.Kafka "$KAFKA_DIR/server.properties" >>"$KAFKA_DIR/stdout.log" 2>&1 &
  echo $! > "$PIDFILE"
  wait_for "kafka on 127.0.0.1:$PORT" 120 healthy || { tail -n 30 "$LOGFILE" >&2; die "kafka did not start"; }
}

EXTRA_USAGE="|reset"
extra_command() {
  [ "$1" = reset ] || return 1
  stop_pidfile kafka "$PIDFILE"
  rm -rf "$DATA"
  log "kafka data removed"
}

service_main kafka "127.0.0.1:$PORT" "$@"
