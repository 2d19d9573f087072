#!/usr/bin/env bash
# Debian packages that necoma's features and tests use. Idempotent: installs only what is missing.
set -euo pipefail
PKGS=(
  tshark tcpdump          # reference decoders the tests compare against
  softflowd nfdump nfdump-sflow pmacct tcpreplay   # real flow exporters and a reference collector
  unbound dnsutils hping3 nmap iproute2            # the network-namespace lab; unbound: the resolver the RPZ tests start
  publicsuffix            # offline public suffix list
  postgresql              # the exchange store's second engine (tests start a throwaway cluster)
  nftables bind9-utils    # protect drivers: nft for the nftables point, named-checkzone guards RPZ zones
  iputils-ping            # ICMP probes in the nftables namespace lab
  bsdutils                # `logger`: the real syslog sender of tests/test_syslog_exporters.py (Essential, listed to be explicit)
  gobgpd                  # protect: GoBGP speaker for FlowSpec/RTBH points, and the BGP peer the tests announce to
  openjdk-17-jre-headless # Java for the Spark engine (pyspark) and the standalone Spark cluster tests/test_analyze_cluster.py starts
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "necoma setup: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -qq
# Package scripts must not start daemons (unbound's would serve port 53 and, with resolvconf,
# register itself as the system resolver): invoke-rc.d and deb-systemd-invoke honour policy-rc.d.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}"
# The packaged daemons are not wanted as system services; tests start their own.
for svc in unbound unbound-resolvconf softflowd nfdump pmacct postgresql gobgpd; do
  systemctl disable --now "$svc" >/dev/null 2>&1 || true
  service "$svc" stop >/dev/null 2>&1 || true
done
