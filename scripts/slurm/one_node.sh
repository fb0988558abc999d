#!/usr/bin/env bash
# A real one-node SLURM cluster on this (Debian) machine, for tests and for trying the slurm
# profile: munge + slurmctld + slurmd on localhost, no accounting, no cgroups.
#
#   sudo scripts/slurm/one_node.sh up       # install (apt) if needed, configure, start, wait idle
#   sudo scripts/slurm/one_node.sh status   # daemons and node state; exit 0 only when usable
#   sudo scripts/slurm/one_node.sh down     # stop the daemons started by `up` (by their pid files)
#
# Idempotent: `up` twice leaves one set of daemons; `down` when nothing runs is fine.
# Checked with Debian 12's SLURM 22.05 as root without systemd. Writes /etc/slurm/slurm.conf
# (refusing to replace one it did not write) and keeps its state in $REM_SLURM_STATE
# (default /var/lib/rem-slurm). The partition is called `main` (profiles/slurm uses it).
set -euo pipefail

STATE=${REM_SLURM_STATE:-/var/lib/rem-slurm}
CONF=/etc/slurm/slurm.conf
MARK="# written by rem scripts/slurm/one_node.sh"
WAIT_S=${REM_SLURM_WAIT_S:-60}

log() { echo "one_node: $*" >&2; }
die() { log "error: $*"; exit 1; }

need_root() {
  [ "$(id -u)" -eq 0 ] || die "run as root (it installs packages and starts daemons): sudo $0 $*"
}

pid_alive() {  # pid file -> running?
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

install_packages() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then
    return
  fi
  command -v apt-get >/dev/null || die "apt-get not found: install slurm-wlm and munge with your package manager"
  log "installing slurm-wlm and munge (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq slurm-wlm munge >/dev/null
}

start_munge() {
  if [ ! -s /etc/munge/munge.key ]; then
    log "creating /etc/munge/munge.key"
    mkdir -p /etc/munge
    head -c 1024 /dev/urandom > /etc/munge/munge.key
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "starting munged"
    # munged refuses to start over a stale socket/pid from a killed instance.
    pgrep -u munge -x munged >/dev/null || rm -f /run/munge/munge.socket.2* /run/munge/munged.pid
    if command -v runuser >/dev/null; then
      runuser -u munge -- /usr/sbin/munged
    else
      su -s /bin/sh munge -c /usr/sbin/munged
    fi
  fi
  for _ in $(seq 20); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return
    sleep 0.5
  done
  die "munge does not work: 'munge -n | unmunge' fails (see /var/log/munge/munged.log)"
}

write_conf() {
  local host cpus mem
  host=$(hostname)
  if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    die "$CONF exists and was not written by this script; move it away to use the test cluster"
  fi
  # What slurmd sees on this machine; keep some memory back for the OS and Snakemake.
  cpus=$(slurmd -C | sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' | head -1)
  mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -1)
  [ -n "$cpus" ] && [ -n "$mem" ] || die "could not read CPUs/RealMemory from 'slurmd -C'"
  mem=$(( mem * 9 / 10 ))
  mkdir -p /etc/slurm "$STATE/state" "$STATE/spool"
  local tmp
  tmp=$(mktemp "$CONF.XXXXXX")
  cat > "$tmp" <<EOF
$MARK
ClusterName=local
SlurmctldHost=$host
SlurmUser=root
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
# Finished jobs stay visible to squeue for 5 min (the Snakemake plugin's squeue status check).
MinJobAge=300
# A cancelled job gets SIGTERM, then SIGKILL after this many seconds.
KillWait=10
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  chmod 644 "$tmp"
  mv "$tmp" "$CONF"
  # No cgroup.conf: 22.05 does not know CgroupPlugin=disabled and slurmd would not start.
}

node_state() {
  sinfo -h -N -o '%t' 2>/dev/null | head -1
}

up() {
  need_root up
  install_packages
  start_munge
  write_conf
  if ! pid_alive "$STATE/slurmctld.pid"; then
    log "starting slurmctld"
    slurmctld -i
  fi
  if ! pid_alive "$STATE/slurmd.pid"; then
    log "starting slurmd"
    slurmd
  fi
  local state=""
  for _ in $(seq $(( WAIT_S * 2 ))); do
    state=$(node_state)
    case "$state" in
      idle|mix|alloc) log "node $(hostname) is $state; partition main is up"; return 0 ;;
      down*|drain*) scontrol update NodeName="$(hostname)" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
  done
  die "node not idle after ${WAIT_S}s (state '${state:-none}'); see $STATE/slurmctld.log and $STATE/slurmd.log"
}

stop_pidfile() {  # name pidfile
  if pid_alive "$2"; then
    local pid
    pid=$(cat "$2")
    log "stopping $1 (pid $pid)"
    kill "$pid"
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$2"
}

down() {
  need_root down
  stop_pidfile slurmd "$STATE/slurmd.pid"
  stop_pidfile slurmctld "$STATE/slurmctld.pid"
  if [ -s /run/munge/munged.pid ] && kill -0 "$(cat /run/munge/munged.pid)" 2>/dev/null; then
    stop_pidfile munged /run/munge/munged.pid
  fi
  log "down"
}

status() {
  local ok=0
  for d in slurmctld slurmd; do
    if pid_alive "$STATE/$d.pid"; then echo "$d: running (pid $(cat "$STATE/$d.pid"))"; else echo "$d: stopped"; ok=1; fi
  done
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then echo "munge: ok"; else echo "munge: not working"; ok=1; fi
  local state
  state=$(node_state || true)
  echo "node: ${state:-unknown}"
  case "$state" in idle|mix|alloc) ;; *) ok=1 ;; esac
  return $ok
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
