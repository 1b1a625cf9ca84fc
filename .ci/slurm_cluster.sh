#!/usr/bin/env bash
# Single-node SLURM test cluster (Debian slurm-wlm + munge), partitions `standard` (default)
# and `gpu` on the same node (the gpu partition has no GPUs here). Idempotent.
#   .ci/slurm_cluster.sh         install if missing, configure, start; waits until idle
#   .ci/slurm_cluster.sh stop    stop slurmd, slurmctld, munged
set -euo pipefail

stop() {
  for d in slurmd slurmctld munged; do
    if pid=$(pgrep -x "$d"); then kill $pid 2>/dev/null || true; fi
  done
}
if [[ "${1:-}" == "stop" ]]; then stop; exit 0; fi

if [[ $(id -u) != 0 ]]; then echo "slurm_cluster: needs root" >&2; exit 2; fi
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  command -v apt-get >/dev/null || { echo "slurm_cluster: no apt-get" >&2; exit 3; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq slurm-wlm munge >/dev/null
fi

HOST=$(hostname -s)
CPUS=$(nproc)
MEM=$(awk '/MemTotal/ {print int($2/1024*0.8)}' /proc/meminfo)
CONF=/etc/slurm/slurm.conf
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
cat > "$CONF.new" <<CONF
ClusterName=ethoflow
SlurmctldHost=$HOST
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
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
# finished jobs stay visible to squeue this long (the plugin's squeue status needs it)
MinJobAge=600
SchedulerParameters=defer_no
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=standard Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
PartitionName=gpu Nodes=$HOST Default=NO MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
changed=1
if [[ -f $CONF ]] && cmp -s "$CONF" "$CONF.new"; then changed=0; fi
mv "$CONF.new" "$CONF"
rm -f /etc/slurm/cgroup.conf  # 22.05 has no "disabled" cgroup plugin; none is used

if [[ $changed == 1 ]]; then stop; sleep 1; fi
chown -R munge:munge /run/munge /etc/munge /var/lib/munge /var/log/munge 2>/dev/null || true
[[ -s /etc/munge/munge.key ]] || { mungekey -c 2>/dev/null || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
pgrep -x munged >/dev/null || su -s /bin/sh munge -c /usr/sbin/munged
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd

for _ in $(seq 60); do
  if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed)'; then
    scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
    sinfo; exit 0
  fi
  scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
  sleep 1
done
echo "slurm_cluster: node did not become idle" >&2; sinfo >&2 || true; exit 1
