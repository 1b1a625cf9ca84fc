#!/usr/bin/env bash
# Single-node SLURM test cluster (Debian slurm-wlm + munge, no slurmdbd): partitions
# `standard` (default) and `gpu` on this host (no GRES: the gpu partition has no GPUs here).
# Idempotent; run as root. No init system is assumed: the daemons are started directly.
#   .ci/slurm_cluster.sh [start]   install if missing, configure, start; wait until idle
#   .ci/slurm_cluster.sh stop      stop slurmd, slurmctld, munged
#   .ci/slurm_cluster.sh status    exit 0 when the node answers idle/mixed/allocated
set -euo pipefail

CONF=/etc/slurm/slurm.conf

stop() {
  local d pid
  for d in slurmd slurmctld munged; do
    for pid in $(pgrep -x "$d" || true); do kill "$pid" 2>/dev/null || true; done
  done
  for _ in $(seq 20); do
    pgrep -x slurmd >/dev/null || pgrep -x slurmctld >/dev/null || pgrep -x munged >/dev/null || return 0
    sleep 0.5
  done
}

status() {
  command -v sinfo >/dev/null || { echo "slurm_cluster: not installed"; return 1; }
  pgrep -x slurmctld >/dev/null && pgrep -x slurmd >/dev/null && pgrep -x munged >/dev/null \
    || { echo "slurm_cluster: daemons not running"; return 1; }
  sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)' \
    || { echo "slurm_cluster: node not ready"; sinfo 2>&1 || true; return 1; }
  sinfo
}

start() {
  local t0 t1 changed
  t0=$(date +%s.%N)
  if [[ $(id -u) != 0 ]]; then echo "slurm_cluster: needs root" >&2; exit 2; fi
  if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || { echo "slurm_cluster: slurm-wlm missing and no apt-get" >&2; exit 3; }
    export DEBIAN_FRONTEND=noninteractive
    t1=$(date +%s.%N)
    if ! apt-get install -y -qq slurm-wlm munge >/dev/null 2>&1; then
      apt-get update -qq >/dev/null
      apt-get install -y -qq slurm-wlm munge >/dev/null
    fi
    echo "slurm_cluster: apt install $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N)-$t1}") s"
  fi

  local host cpus mem
  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(free -m | awk '/^Mem:/ {print int($2*0.8)}')
  mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
  cat > "$CONF.new" <<CONF
# written by .ci/slurm_cluster.sh (single-node test cluster)
ClusterName=ethoflow
SlurmctldHost=$host
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
SlurmdTimeout=300
SlurmUser=root
SlurmdUser=root
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# finished jobs stay visible to squeue/scontrol this long (the plugin's squeue status needs
# it: keep it >= 3 x slurm-init-seconds-before-status-checks)
MinJobAge=300
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=standard Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$host Default=NO MaxTime=INFINITE State=UP
CONF
  changed=1
  if [[ -f $CONF ]] && cmp -s "$CONF" "$CONF.new"; then changed=0; fi
  mv "$CONF.new" "$CONF"
  rm -f /etc/slurm/cgroup.conf  # 22.05 has no "disabled" cgroup plugin; none is used
  if [[ $changed == 1 ]] && pgrep -x slurmctld >/dev/null; then
    # running daemons (maybe with jobs of another user of this host): reread the config in
    # place; restart only if that fails
    scontrol reconfigure >/dev/null 2>&1 || stop
  fi

  mkdir -p /etc/munge /var/lib/munge /var/log/munge
  if [[ ! -s /etc/munge/munge.key ]]; then
    mungekey -c -f 2>/dev/null || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null
  fi
  chown -R munge:munge /run/munge /etc/munge /var/lib/munge /var/log/munge
  chmod 400 /etc/munge/munge.key
  pgrep -x munged >/dev/null || su -s /bin/sh munge -c /usr/sbin/munged
  pgrep -x slurmctld >/dev/null || slurmctld
  pgrep -x slurmd >/dev/null || slurmd

  for _ in $(seq 120); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)$'; then
      sinfo
      echo "slurm_cluster: ready in $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N)-$t0}") s"
      return 0
    fi
    scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
    sleep 0.5
  done
  echo "slurm_cluster: node did not become idle" >&2; sinfo >&2 || true; exit 1
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 64 ;;
esac
