#!/usr/bin/env bash
# kafka.sh runs a single-node Apache Kafka (KRaft, broker and controller in one
# process) on this machine for development and tests. It needs only Java 17+
# and Maven: the broker's jars come from Maven Central through
# scripts/kafka/pom.xml.
#
#   scripts/kafka.sh start    download (once), format fresh storage, start, wait
#                             until the broker takes writes, print the bootstrap
#                             address
#   scripts/kafka.sh stop     stop the broker and wait until it has exited
#   scripts/kafka.sh restart  stop the broker if it runs, then start it again on
#                             the data it had (as start with KAFKA_KEEP_DATA=1)
#   scripts/kafka.sh status   print the bootstrap address if running, else exit 1
#
# Only the bootstrap address (for example 127.0.0.1:19092) is printed on
# standard output, as the last line; everything else goes to standard error, so
#
#   export KAFKA_BROKERS=$(scripts/kafka.sh start)
#
# works. Running start again while the broker runs just prints the address.
#
# Settings (environment):
#   KAFKA_VERSION          Apache Kafka version (default 4.4.0; never 4.0.0,
#                          which rejects the JoinGroup v1 that kafka-go's
#                          consumer groups send)
#   KAFKA_HOME             where the jars are cached
#                          (default $HOME/.cache/switchyard/kafka-$KAFKA_VERSION)
#   KAFKA_DATA             state: config, data, pid and log files
#                          (default /tmp/switchyard-kafka). The data is wiped
#                          at each start: tests make topics of their own, and
#                          a broker reloading every old run's partitions
#                          starts slower each time.
#   KAFKA_KEEP_DATA        1: start keeps the data (topics, messages, committed
#                          offsets) of the last run in KAFKA_DATA, formatting
#                          only when there is none yet; a broker stopped and
#                          started again this way is a broker restart, as
#                          tests of outages need (default 0: wipe)
#   KAFKA_PORT             client (PLAINTEXT) port on 127.0.0.1 (default 19092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port on 127.0.0.1 (default 19093)
#   KAFKA_START_TIMEOUT    seconds to wait for the broker to take writes (default 90)
#   KAFKA_HEAP_OPTS        JVM heap flags (default -Xms256m -Xmx1g)
#
# Topics are not created automatically (auto.create.topics.enable=false):
# queue/kafka creates the topics it uses with its configured partition count.
set -euo pipefail

KAFKA_VERSION=${KAFKA_VERSION:-4.4.0}
KAFKA_HOME=${KAFKA_HOME:-$HOME/.cache/switchyard/kafka-$KAFKA_VERSION}
KAFKA_DATA=${KAFKA_DATA:-/tmp/switchyard-kafka}
KAFKA_PORT=${KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-19093}
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-90}
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}
KAFKA_KEEP_DATA=${KAFKA_KEEP_DATA:-0}

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TEMPLATES=$SCRIPT_DIR/kafka
ADDRESS=127.0.0.1:$KAFKA_PORT
JARS=$KAFKA_HOME/jars
PID_FILE=$KAFKA_DATA/kafka.pid
LOG_FILE=$KAFKA_DATA/kafka.log
CONFIG=$KAFKA_DATA/server.properties

say() { echo "kafka.sh: $*" >&2; }

die() {
	say "$*"
	exit 1
}

# pid prints the broker's pid when the pid file names a live kafka.Kafka process.
pid() {
	local p
	[[ -f $PID_FILE ]] || return 1
	p=$(<"$PID_FILE")
	[[ $p =~ ^[0-9]+$ ]] || return 1
	[[ -r /proc/$p/cmdline ]] || return 1
	tr '\0' ' ' <"/proc/$p/cmdline" | grep -q 'kafka\.Kafka' || return 1
	echo "$p"
}

port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# fetch copies the broker's jars from Maven Central into $JARS, once.
fetch() {
	[[ -f $JARS/.complete ]] && return 0
	command -v java >/dev/null || die "java not found: install Java 17 or later"
	command -v mvn >/dev/null || die "mvn not found: install Maven"
	say "downloading Apache Kafka $KAFKA_VERSION from Maven Central into $JARS"
	mkdir -p "$KAFKA_HOME"
	local tmp
	tmp=$(mktemp -d "$KAFKA_HOME/jars.XXXXXX")
	if ! mvn -q -B -Dstyle.color=never -f "$TEMPLATES/pom.xml" \
		-Dkafka.version="$KAFKA_VERSION" \
		-DoutputDirectory="$tmp" \
		dependency:copy-dependencies >&2; then
		rm -rf "$tmp"
		die "downloading Apache Kafka $KAFKA_VERSION failed"
	fi
	[[ -f $tmp/kafka_2.13-$KAFKA_VERSION.jar ]] || {
		rm -rf "$tmp"
		die "kafka_2.13-$KAFKA_VERSION.jar missing after download"
	}
	touch "$tmp/.complete"
	rm -rf "$JARS"
	mv "$tmp" "$JARS"
}

# compile_ready builds the readiness check (scripts/kafka/Ready.java) against
# the downloaded client jar.
compile_ready() {
	local out=$KAFKA_HOME/ready
	if [[ -f $out/Ready.class && $out/Ready.class -nt $TEMPLATES/Ready.java ]]; then
		return 0
	fi
	mkdir -p "$out"
	javac -nowarn -d "$out" -cp "$JARS/*" "$TEMPLATES/Ready.java" >&2 ||
		die "compiling $TEMPLATES/Ready.java failed"
}

write_config() {
	mkdir -p "$KAFKA_DATA/data"
	sed -e "s|@PORT@|$KAFKA_PORT|g" \
		-e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
		-e "s|@DATA_DIR@|$KAFKA_DATA/data|g" \
		"$TEMPLATES/server.properties.in" >"$CONFIG"
}

# format empties the data dir and writes the KRaft metadata with a fresh
# cluster id.
format() {
	rm -rf "$KAFKA_DATA/data"
	mkdir -p "$KAFKA_DATA/data"
	# A cluster id is 16 random bytes in unpadded URL-safe base64, as
	# `kafka-storage random-uuid` prints them; like Kafka, avoid a leading '-'.
	local id=-
	while [[ $id == -* ]]; do
		id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
	done
	say "formatting $KAFKA_DATA/data with cluster id $id"
	if ! java -cp "$JARS/*" -Dlog4j2.configurationFile="$TEMPLATES/log4j2.properties" \
		kafka.tools.StorageTool format -t "$id" -c "$CONFIG" >"$KAFKA_DATA/format.log" 2>&1; then
		tail -n 20 "$KAFKA_DATA/format.log" >&2
		die "formatting $KAFKA_DATA/data failed (log: $KAFKA_DATA/format.log)"
	fi
}

fail_start() {
	say "$*"
	if [[ -f $LOG_FILE ]]; then
		say "last lines of $LOG_FILE:"
		tail -n 40 "$LOG_FILE" >&2
	fi
	if [[ -n ${STARTED_PID:-} ]]; then
		kill "$STARTED_PID" 2>/dev/null || true
	fi
	exit 1
}

start() {
	if pid >/dev/null; then
		say "already running (pid $(pid))"
		echo "$ADDRESS"
		return 0
	fi
	if port_open "$KAFKA_PORT"; then
		die "port $KAFKA_PORT is in use by a process not started from $KAFKA_DATA"
	fi
	if port_open "$KAFKA_CONTROLLER_PORT"; then
		die "controller port $KAFKA_CONTROLLER_PORT is in use"
	fi

	local t0=$SECONDS
	fetch
	compile_ready
	write_config
	case $KAFKA_KEEP_DATA in
	0) format ;;
	1)
		if [[ -f $KAFKA_DATA/data/meta.properties ]]; then
			say "keeping the data in $KAFKA_DATA/data"
		else
			format
		fi
		;;
	*) die "KAFKA_KEEP_DATA must be 0 or 1, got $KAFKA_KEEP_DATA" ;;
	esac

	say "starting Apache Kafka $KAFKA_VERSION on $ADDRESS (log: $LOG_FILE)"
	# setsid puts the broker in a session of its own, so it outlives the
	# shell (and the process group) that started it.
	# shellcheck disable=SC2086 # KAFKA_HEAP_OPTS holds several flags.
	setsid nohup java $KAFKA_HEAP_OPTS -XX:+UseG1GC -Djava.awt.headless=true \
		-Dlog4j2.configurationFile="$TEMPLATES/log4j2.properties" \
		-cp "$JARS/*" kafka.Kafka "$CONFIG" >"$LOG_FILE" 2>&1 </dev/null &
	STARTED_PID=$!
	echo "$STARTED_PID" >"$PID_FILE"

	local deadline=$((SECONDS + KAFKA_START_TIMEOUT))
	while ! port_open "$KAFKA_PORT"; do
		kill -0 "$STARTED_PID" 2>/dev/null || fail_start "the broker exited while starting"
		((SECONDS < deadline)) || fail_start "port $KAFKA_PORT not open after ${KAFKA_START_TIMEOUT}s"
		sleep 0.2
	done
	until java -cp "$KAFKA_HOME/ready:$JARS/*" Ready "$ADDRESS" >&2; do
		kill -0 "$STARTED_PID" 2>/dev/null || fail_start "the broker exited while starting"
		((SECONDS < deadline)) || fail_start "the broker takes no writes after ${KAFKA_START_TIMEOUT}s"
		sleep 1
	done
	say "ready in $((SECONDS - t0))s (pid $STARTED_PID)"
	echo "$ADDRESS"
}

stop() {
	local p
	if ! p=$(pid); then
		say "not running"
		rm -f "$PID_FILE"
		return 0
	fi
	say "stopping pid $p"
	kill "$p"
	local deadline=$((SECONDS + 60))
	while kill -0 "$p" 2>/dev/null; do
		if ((SECONDS >= deadline)); then
			say "pid $p still running after 60s; killing it"
			kill -9 "$p" 2>/dev/null || true
			deadline=$((SECONDS + 60))
		fi
		sleep 0.2
	done
	rm -f "$PID_FILE"
	say "stopped"
}

status() {
	local p
	if p=$(pid) && port_open "$KAFKA_PORT"; then
		say "running (pid $p, version $KAFKA_VERSION, data $KAFKA_DATA)"
		echo "$ADDRESS"
		return 0
	fi
	say "not running"
	return 1
}

case ${1:-} in
start) start ;;
stop) stop ;;
restart)
	stop
	KAFKA_KEEP_DATA=1
	start
	;;
status) status ;;
*)
	echo "usage: $0 start|stop|restart|status" >&2
	exit 2
	;;
esac
