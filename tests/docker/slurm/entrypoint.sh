#!/bin/bash
# Start munge, then this container's Slurm daemon in the foreground (its log is the container's log).
set -e
mkdir -p /run/munge && chown munge:munge /run/munge
runuser -u munge -- /usr/sbin/munged
case "$1" in
  ctld) exec slurmctld -D ;;
  node) exec slurmd -D ;;
  *) exec "$@" ;;
esac
