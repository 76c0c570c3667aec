#!/usr/bin/env bash
# Sets up Podman from Debian's packages on a machine like the ones this project runs on
# (Debian, root, no registry reachable), so that the deploy session also builds and runs
# the service's image. Nothing runs this by itself: CI does not install an engine.
#
#   bash harness/setup_container_engine.sh
#
# runc, cgroupfs and file events: these machines run no systemd user session, and
# crun's and journald's defaults fail there. Lower default ulimits: the machine's own
# are higher than a container may be given.
set -euo pipefail

if [[ $(id -u) != 0 ]]; then
    echo "error: run as root (apt-get and /etc/containers)" >&2
    exit 1
fi

apt-get update -qq
# mmdebstrap makes the stand-in base images (no registry here); uidmap for rootless use.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc mmdebstrap uidmap >/dev/null

conf=/etc/containers/containers.conf
if [[ -e $conf ]] && ! grep -q 'harness/setup_container_engine.sh' "$conf"; then
    cp "$conf" "$conf.orig"
    echo "kept the previous $conf as $conf.orig"
fi
mkdir -p /etc/containers
cat >"$conf" <<'CONF'
# Written by harness/setup_container_engine.sh.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF

podman info --format 'podman {{.Version.Version}}: runtime {{.Host.OCIRuntime.Name}}, cgroups {{.Host.CgroupManager}}, storage {{.Store.GraphDriverName}}'
