#!/usr/bin/env bash
# Host tuning for a mudshard machine (bare metal or a VM with many
# connections). Prints each setting as "current -> proposed"; changes
# nothing unless run with --apply (as root).
#
#   scripts/tune-host.sh            # show what would change
#   sudo scripts/tune-host.sh --apply
#
# Applied sysctls are written to /etc/sysctl.d/90-mudshard.conf (so they
# survive a reboot) and loaded at once; the file limits for login sessions
# go to /etc/security/limits.d/90-mudshard.conf. The systemd unit
# (scripts/mudshard.service) sets its own LimitNOFILE and LimitMEMLOCK.
set -euo pipefail

apply=false
case "${1:-}" in
  --apply) apply=true ;;
  ""|--dry-run) ;;
  -h|--help)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 0 ;;
  *) echo "usage: $0 [--apply]" >&2; exit 2 ;;
esac

if $apply && [ "$(id -u)" -ne 0 ]; then
  echo "tune-host: --apply needs root (sudo $0 --apply)" >&2
  exit 1
fi

SYSCTL_FILE=/etc/sysctl.d/90-mudshard.conf
LIMITS_FILE=/etc/security/limits.d/90-mudshard.conf

# name, proposed value, why. A proposed value below the current one is not
# applied: the machine is already tuned further than this.
SYSCTLS=(
  "fs.file-max|2097152|open files, system-wide: one per connection plus the rest of the machine"
  "fs.nr_open|1048576|the ceiling of any process's nofile limit (LimitNOFILE)"
  "net.core.somaxconn|4096|accept queue per listener; mudshard asks for 4096 per shard"
  "net.ipv4.tcp_max_syn_backlog|8192|half-open connections queued during a connect storm"
  "net.ipv4.ip_local_port_range|10240 65535|source ports for outgoing connections (load generators, proxies, Redis); starts above 4000 so no outgoing connection takes the listening port"
  "net.core.netdev_max_backlog|16384|packets queued per CPU when the NIC outpaces the kernel"
)

changes=()
show() { printf '  %-32s %-16s -> %-16s %s\n' "$1" "$2" "$3" "$4"; }

# Compares two values of a setting, field by field (the port range has two:
# its low end should go down, its high end up).
wants_change() {
  local name=$1 current=$2 proposed=$3
  if [ "$name" = net.ipv4.ip_local_port_range ]; then
    local cur_lo cur_hi new_lo new_hi
    read -r cur_lo cur_hi <<<"$current"
    read -r new_lo new_hi <<<"$proposed"
    [ "$new_lo" -lt "$cur_lo" ] || [ "$new_hi" -gt "$cur_hi" ]
  else
    [ "$proposed" -gt "$current" ]
  fi
}

echo "sysctl (current -> proposed):"
for entry in "${SYSCTLS[@]}"; do
  IFS='|' read -r name proposed why <<<"$entry"
  current=$(sysctl -n "$name" 2>/dev/null | tr -s '[:space:]' ' ' | sed 's/ $//' || true)
  if [ -z "$current" ]; then
    show "$name" "(absent)" "-" "not on this kernel; skipped"
    continue
  fi
  if wants_change "$name" "$current" "$proposed"; then
    show "$name" "$current" "$proposed" "$why"
    changes+=("$name = $proposed")
  else
    show "$name" "$current" "(keep)" "$why"
  fi
done

echo
echo "file limits (nofile) for login sessions (current soft/hard -> proposed):"
nofile_soft=$(ulimit -Sn)
nofile_hard=$(ulimit -Hn)
show "nofile" "$nofile_soft/$nofile_hard" "1048576/1048576" "one per connection; services get it from LimitNOFILE"
echo
echo "locked memory (glommio's io_uring rings need at least 512 KiB per shard):"
show "memlock" "$(ulimit -Sl)/$(ulimit -Hl)" "unlimited" "the unit sets LimitMEMLOCK=infinity"

cat <<'NOTES'

Notes (not applied; decide per machine):
  * Cores for shards: run one shard per core with --cores (or server.cores),
    and keep the machine's other work off them. With isolcpus=2-7 nohz_full=2-7
    rcu_nocbs=2-7 on the kernel command line (/etc/default/grub, then
    update-grub and a reboot) the scheduler leaves cores 2-7 to pinned
    threads and stops the timer tick there; give those cores to --cores.
    Leave core 0 (and its hyperthread sibling) for the kernel, the store and
    the hasher threads. Check siblings in
    /sys/devices/system/cpu/cpu*/topology/thread_siblings_list and do not
    pin two shards to the two threads of one core.
  * IRQ affinity: network interrupts should land on the housekeeping cores,
    not on the shards' cores. Either let irqbalance do it with
    IRQBALANCE_BANNED_CPULIST=2-7 (in /etc/default/irqbalance), or stop
    irqbalance and write a CPU mask to /proc/irq/<n>/smp_affinity for each
    of the NIC's queues (grep the interface in /proc/interrupts). With RSS
    queues, one queue per housekeeping core is enough for this workload.
  * Check the result: `mudshard check` names offline cores; /healthz shows
    each shard's core; the log line "shard k started" gives the CPU the
    shard thread actually runs on.
NOTES

if [ ${#changes[@]} -eq 0 ]; then
  echo
  echo "nothing to change."
  exit 0
fi

if ! $apply; then
  echo
  echo "dry run: nothing changed. Run with --apply (as root) to write"
  echo "$SYSCTL_FILE and $LIMITS_FILE and load them."
  exit 0
fi

{
  echo "# Written by mudshard's scripts/tune-host.sh"
  for change in "${changes[@]}"; do echo "$change"; done
} >"$SYSCTL_FILE"
sysctl -p "$SYSCTL_FILE"
cat >"$LIMITS_FILE" <<'LIMITS'
# Written by mudshard's scripts/tune-host.sh
*    soft nofile 1048576
*    hard nofile 1048576
*    soft memlock unlimited
*    hard memlock unlimited
LIMITS
echo "applied: $SYSCTL_FILE (loaded), $LIMITS_FILE (for new login sessions)."
