# Shared helpers for the infra/ scripts. Sourced, not executed.
# Every service runs as a local process on loopback, with its data, logs and pid file under
# $JOBTRAIL_INFRA_DIR (default: <repo>/.infra-data, git-ignored).
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
INFRA_DIR=${JOBTRAIL_INFRA_DIR:-$REPO_ROOT/.infra-data}
mkdir -p "$INFRA_DIR"

log() { printf '[infra] %s\n' "$*" >&2; }
die() { printf '[infra] error: %s\n' "$*" >&2; exit 1; }

# pid_alive FILE: true when FILE names a running process.
pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# port_open PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND every 0.5 s until it succeeds.
wait_for() {
  local what=$1 seconds=$2; shift 2
  local deadline=$(( $(date +%s) + seconds ))
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.5
  done
  log "$what is up"
}

# stop_pidfile NAME FILE: SIGTERM, wait up to 30 s, then SIGKILL.
stop_pidfile() {
  local name=$1 file=$2
  if ! pid_alive "$file"; then rm -f "$file"; log "$name is not running"; return 0; fi
  local pid; pid=$(cat "$file")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$file"
  log "$name stopped"
}

# apt_install PACKAGE BINARY: installs a Debian package when BINARY is not on PATH.
apt_install() {
  local package=$1 binary=$2
  command -v "$binary" >/dev/null 2>&1 && return 0
  command -v apt-get >/dev/null 2>&1 || die "$binary is missing and apt-get is not available; install $package"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing $package from Debian packages"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$package" >/dev/null
}

# service_main NAME ADDRESS ARGS...: the subcommands every service script answers. The script
# defines install, start and healthy and sets PIDFILE and LOGFILE; it may define its own stop,
# and extra_command (returning 1 for what it does not know) with EXTRA_USAGE for more subcommands.
service_main() {
  local name=$1 address=$2
  shift 2
  case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) if declare -F stop >/dev/null; then stop; else stop_pidfile "$name" "$PIDFILE"; fi ;;
    status) if healthy; then echo "$name: up at $address"; else echo "$name: down"; exit 1; fi ;;
    logs) tail -n "${2:-100}" "$LOGFILE" ;;
    *)
      if declare -F extra_command >/dev/null && extra_command "$@"; then return 0; fi
      echo "usage: $0 install|start|stop|status|logs${EXTRA_USAGE:-}" >&2
      exit 2 ;;
  esac
}
