#!/usr/bin/env bash
# Single-node SLURM test cluster, shaped like a university cluster such as Great Lakes:
#  - Debian slurm-wlm + munge, partitions `standard` (default) and `gpu` on this host;
#  - job accounting (slurmdbd on a local MariaDB), so sacct, sacctmgr and accounts work, with
#    one account `ethoflow_lab` that root may charge;
#  - two stand-in `gpu` GRES on the node (placeholder device files, no real GPU), so jobs that
#    ask `--gres=gpu:1`, as the profile's Great Lakes defaults do, are scheduled and their
#    allocation is on record.
# Idempotent; run as root. No init system is assumed: the daemons are started directly.
#   .ci/slurm_cluster.sh [start]   install if missing, configure, start; wait until idle
#   .ci/slurm_cluster.sh stop      stop slurmd, slurmctld, slurmdbd, mariadbd, munged
#   .ci/slurm_cluster.sh status    exit 0 when the node answers idle/mixed/allocated
set -euo pipefail

CONF=/etc/slurm/slurm.conf
DBDCONF=/etc/slurm/slurmdbd.conf
GRESCONF=/etc/slurm/gres.conf
ACCOUNT=ethoflow_lab
DAEMONS="slurmd slurmctld slurmdbd mariadbd munged"

elapsed() { awk "BEGIN{printf \"%.1f\", $(date +%s.%N)-$1}"; }

stop() {
  local d pid
  for d in $DAEMONS; do
    for pid in $(pgrep -x "$d" || true); do kill "$pid" 2>/dev/null || true; done
    for _ in $(seq 40); do pgrep -x "$d" >/dev/null || break; sleep 0.25; done
  done
}

status() {
  command -v sinfo >/dev/null || { echo "slurm_cluster: not installed"; return 1; }
  local d
  for d in $DAEMONS; do
    pgrep -x "$d" >/dev/null || { echo "slurm_cluster: $d not running"; return 1; }
  done
  sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)' \
    || { echo "slurm_cluster: node not ready"; sinfo 2>&1 || true; return 1; }
  sinfo
}

# Write $2 to $1 when it differs; echo 1 when it did.
write_if_changed() {
  if [[ -f $1 ]] && cmp -s "$1" <(printf '%s\n' "$2"); then echo 0; return; fi
  printf '%s\n' "$2" > "$1"
  echo 1
}

wait_for() {  # wait_for <what> <tries of 0.25 s> <command...>
  local what=$1 tries=$2
  shift 2
  for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  echo "slurm_cluster: $what did not come up" >&2
  return 1
}

install() {
  local missing="" t1 c
  for c in slurmctld slurmd munged slurmdbd mariadbd; do
    command -v "$c" >/dev/null || missing=1
  done
  [[ -z $missing ]] && return 0
  command -v apt-get >/dev/null || { echo "slurm_cluster: slurm-wlm missing and no apt-get" >&2; exit 3; }
  export DEBIAN_FRONTEND=noninteractive
  t1=$(date +%s.%N)
  local pkgs="slurm-wlm slurmdbd munge mariadb-server"
  if ! apt-get install -y -qq $pkgs >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    apt-get install -y -qq $pkgs >/dev/null
  fi
  echo "slurm_cluster: apt install $(elapsed "$t1") s"
}

start() {
  local t0 host cpus mem changed=0 i
  t0=$(date +%s.%N)
  if [[ $(id -u) != 0 ]]; then echo "slurm_cluster: needs root" >&2; exit 2; fi
  install

  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(free -m | awk '/^Mem:/ {print int($2*0.8)}')
  mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge \
    /run/mysqld
  chown mysql:mysql /run/mysqld

  # slurmd drops a GPU GRES without a device file: two stand-ins (character devices with the
  # numbers of /dev/null; nothing opens them, task/none binds nothing)
  for i in 0 1; do
    [[ -e /dev/ethoflow_gpu$i ]] || mknod /dev/ethoflow_gpu$i c 1 3
  done
  changed=$((changed + $(write_if_changed "$GRESCONF" "# written by .ci/slurm_cluster.sh: stand-in GPUs
Name=gpu File=/dev/ethoflow_gpu[0-1]")))

  changed=$((changed + $(write_if_changed "$CONF" "# written by .ci/slurm_cluster.sh (single-node test cluster)
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
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageTRES=gres/gpu
AccountingStoreFlags=job_comment
# finished jobs stay visible to squeue/scontrol this long (the plugin's squeue status needs
# it: keep it >= 3 x slurm-init-seconds-before-status-checks)
MinJobAge=300
GresTypes=gpu
NodeName=$host CPUs=$cpus RealMemory=$mem Gres=gpu:2 State=UNKNOWN
PartitionName=standard Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$host Default=NO MaxTime=INFINITE State=UP")))

  changed=$((changed + $(write_if_changed "$DBDCONF" "# written by .ci/slurm_cluster.sh
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=ethoflow-test
StorageLoc=slurm_acct_db")))
  chmod 600 "$DBDCONF"
  rm -f /etc/slurm/cgroup.conf  # 22.05 has no "disabled" cgroup plugin; none is used
  # a changed node, GRES or accounting definition needs fresh daemons
  if [[ $changed -gt 0 ]]; then stop; fi

  mkdir -p /etc/munge /var/lib/munge /var/log/munge
  if [[ ! -s /etc/munge/munge.key ]]; then
    mungekey -c -f 2>/dev/null || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null
  fi
  chown -R munge:munge /run/munge /etc/munge /var/lib/munge /var/log/munge
  chmod 400 /etc/munge/munge.key
  pgrep -x munged >/dev/null || su -s /bin/sh munge -c /usr/sbin/munged

  if ! pgrep -x mariadbd >/dev/null; then
    (mariadbd --user=mysql --bind-address=127.0.0.1 >/var/log/mariadbd.log 2>&1 &)
  fi
  wait_for MariaDB 120 mariadb -e "select 1"
  mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE OR REPLACE USER 'slurm'@'localhost' IDENTIFIED BY 'ethoflow-test';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
  pgrep -x slurmdbd >/dev/null || slurmdbd
  wait_for slurmdbd 120 sacctmgr -n list cluster
  # the cluster, the lab account and root's association, before slurmctld registers
  sacctmgr -n list cluster format=cluster%40 | grep -qw ethoflow \
    || sacctmgr -i add cluster ethoflow >/dev/null
  sacctmgr -n list account format=account%40 | grep -qw "$ACCOUNT" \
    || sacctmgr -i add account "$ACCOUNT" Cluster=ethoflow Description=test Organization=ethoflow >/dev/null
  sacctmgr -n list association user=root format=account%40 | grep -qw "$ACCOUNT" \
    || sacctmgr -i add user root Account="$ACCOUNT" Cluster=ethoflow >/dev/null

  pgrep -x slurmctld >/dev/null || slurmctld
  pgrep -x slurmd >/dev/null || slurmd

  for _ in $(seq 120); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)$'; then
      sinfo
      echo "slurm_cluster: ready in $(elapsed "$t0") s"
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
