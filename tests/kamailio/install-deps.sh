#!/usr/bin/env bash
# Install what tests/kamailio/run.sh needs (Debian 12 packages), only if missing:
#   kamailio          5.6.x; ships rtpengine.so (no extra-modules package needed)
#   sip-tester        SIPp 3.6.1 (with rtp_stream / play_pcap_audio)
#   rtpengine-daemon  10.5.x, the reference relay (default RELAY_CMD)
#   iproute2          ss, used to check ports
set -euo pipefail
need=()
command -v kamailio >/dev/null || need+=(kamailio)
command -v sipp >/dev/null || need+=(sip-tester)
command -v ss >/dev/null || need+=(iproute2)
if [ "${WITH_RTPENGINE:-1}" = 1 ] && ! command -v rtpengine >/dev/null; then need+=(rtpengine-daemon); fi
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
ls /usr/lib/*/kamailio/modules/rtpengine.so >/dev/null || { echo "kamailio rtpengine.so module missing" >&2; exit 1; }
echo "kamailio: $(kamailio -v | head -1)"
echo "sipp: $(sipp -v 2>&1 | grep -m1 SIPp)"
command -v rtpengine >/dev/null && echo "rtpengine: $(rtpengine --version 2>&1 | head -1)"
exit 0
