#!/usr/bin/env bash
# End-to-end test: SIPp UAC -> Kamailio (rtpengine module) -> SIPp UAS, media anchored
# on a relay driven over NG. Validated against rtpengine; mediarelay only changes RELAY_CMD.
#
#   tests/kamailio/run.sh            one relay (NG 127.0.0.1:2223, ports 30000-30999)
#   tests/kamailio/run.sh --two      two relays in one rtpengine set (2223 + 2224,
#                                    30000-30999 + 31000-31999): calls land on both;
#                                    then freeze the second (SIGSTOP: NG timeouts) and
#                                    then stop it (SIGTERM): new calls all land on the first
#   tests/kamailio/run.sh --bridge   one relay with two interfaces, internal 127.0.0.1 and
#                                    external 203.0.113.1, in a network namespace the rig
#                                    makes (unshare -n; the documentation prefix is on its lo
#                                    only): the UAC is internal, the UAS external (203.0.113.2),
#                                    Kamailio asks for direction=internal direction=external;
#                                    every call's media must cross both interfaces
#
# Environment (defaults in brackets):
#   RELAY_CMD   relay command template; {NG_PORT} {PORT_MIN} {PORT_MAX} are filled in per
#               instance, and {INTERFACES} with the interface flags (--bridge: two named
#               ones) [rtpengine --config-file=none --table=-1 {INTERFACES}
#               --listen-ng=127.0.0.1:{NG_PORT} --port-min={PORT_MIN} --port-max={PORT_MAX}
#               --delete-delay=0 --foreground --log-stderr]
#               A literal command without placeholders works for one relay; --two then
#               also needs RELAY_CMD2 (the second instance's literal command). Relative
#               paths resolve against the caller's cwd (run it from the repository root).
#   MEDIA [rtp_stream]  UAC media source: rtp_stream (uac.xml, loops tone.ulaw) or pcap
#               (uac-pcap.xml, play_pcap_audio of tone.pcap); the UAS always uses rtp_stream
#   CALLS [20] calls per phase (>= 10 expected)   RATE [5] calls/s   CALL_MS [4000] call length
#   SIP_PORT [5060] Kamailio   UAC_PORT [5061]   UAS_PORT [5070]
#   UAC_MEDIA_PORT [6000]  UAS_MEDIA_PORT [6100]   (SIPp RTP; kept out of the relay ranges)
#   NG_PORT1 [2223] NG_PORT2 [2224]   PORTS1 [30000-30999] PORTS2 [31000-31999]
#   RTPE_TOUT_MS [500] RTPE_RETR [2] RTPE_DISABLE_TOUT [10]   Kamailio failover knobs
#   FAILOVER_MAX_MS [5000]  --two: bound on the slowest call setup while relay2 hangs
#   DELETE_WAIT_S [15]  how long NG list may take to empty after the last BYE (rtpengine
#               keeps deleted calls --delete-delay s, 30 by default: the default command sets 0)
#   KAMAILIO_CFG [tests/kamailio/kamailio.cfg]  e.g. tuning/kamailio-rtpengine-set.cfg
#   WORKDIR [mktemp -d]   logs, SIPp stats, NG poll results (kept; path printed at the end)
#
# Exit status: 0 all checks passed, 1 a check failed, 2 setup error (missing tool, busy port).
# Last line: "N passed, M failed".
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MODE=one
for a in "$@"; do
  case "$a" in
    --two) MODE=two ;;
    --bridge) MODE=bridge ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "unknown argument: $a" >&2; exit 2 ;;
  esac
done

# --bridge runs in a network namespace of its own: re-run this script inside one.
if [ "$MODE" = bridge ] && [ -z "${RIG_NETNS:-}" ]; then
  exec unshare -n env RIG_NETNS=1 bash "$0" "$@"
fi
if [ "$MODE" = bridge ]; then
  ip link set lo up && ip addr add 203.0.113.1/24 dev lo && ip addr add 203.0.113.2/24 dev lo \
    || { echo "setup: cannot configure the namespace's lo" >&2; exit 2; }
fi

CALLS=${CALLS:-20}
RATE=${RATE:-5}
CALL_MS=${CALL_MS:-4000}
SIP_PORT=${SIP_PORT:-5060}
UAC_PORT=${UAC_PORT:-5061}
UAS_PORT=${UAS_PORT:-5070}
UAC_MEDIA_PORT=${UAC_MEDIA_PORT:-6000}
UAS_MEDIA_PORT=${UAS_MEDIA_PORT:-6100}
NG_PORT1=${NG_PORT1:-2223}
NG_PORT2=${NG_PORT2:-2224}
PORTS1=${PORTS1:-30000-30999}
PORTS2=${PORTS2:-31000-31999}
RTPE_TOUT_MS=${RTPE_TOUT_MS:-500}
RTPE_RETR=${RTPE_RETR:-2}
RTPE_DISABLE_TOUT=${RTPE_DISABLE_TOUT:-10}
FAILOVER_MAX_MS=${FAILOVER_MAX_MS:-5000}
DELETE_WAIT_S=${DELETE_WAIT_S:-15}
KAMAILIO_CFG=${KAMAILIO_CFG:-$HERE/kamailio.cfg}
MEDIA=${MEDIA:-rtp_stream}
case "$MEDIA" in
  rtp_stream) UAC_XML=$HERE/uac.xml ;;
  pcap) UAC_XML=$HERE/uac-pcap.xml ;;
  *) echo "MEDIA must be rtp_stream or pcap" >&2; exit 2 ;;
esac
DEFAULT_RELAY_CMD='rtpengine --config-file=none --table=-1 {INTERFACES} --listen-ng=127.0.0.1:{NG_PORT} --port-min={PORT_MIN} --port-max={PORT_MAX} --delete-delay=0 --foreground --log-stderr'
RELAY_CMD=${RELAY_CMD:-$DEFAULT_RELAY_CMD}
RELAY_CMD2=${RELAY_CMD2:-}
WORKDIR=${WORKDIR:-$(mktemp -d /tmp/kamailio-rig.XXXXXX)}
mkdir -p "$WORKDIR/run"
NG="python3 $HERE/ng.py"
LOCALHOST=127.0.0.1
if [ "$MODE" = bridge ]; then
  UAS_IP=203.0.113.2
  INTERFACES='--interface=internal/127.0.0.1 --interface=external/203.0.113.1'
  OFFER_FLAGS='replace-origin replace-session-connection ICE=remove direction=internal direction=external'
else
  UAS_IP=$LOCALHOST
  INTERFACES='--interface=127.0.0.1'
  OFFER_FLAGS='replace-origin replace-session-connection ICE=remove'
fi

PIDS=()          # process-group leaders we started (each via setsid)
declare -A NAME_OF
declare -A REAPED  # pids already waited for: never signalled again (the pid may be reused)
PASSES=0
FAILS=0
SUMMARY=()

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*"; }
pass() { PASSES=$((PASSES + 1)); SUMMARY+=("PASS  $*"); log "PASS $*"; }
fail() { FAILS=$((FAILS + 1)); SUMMARY+=("FAIL  $*"); log "FAIL $*"; }

# ---------------------------------------------------------------- process control
start_bg() { # name logfile cmd...   -> sets LAST_PID
  local name=$1 logf=$2; shift 2
  setsid "$@" >"$logf" 2>&1 </dev/null &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
  NAME_OF[$LAST_PID]=$name
  log "started $name (pid $LAST_PID): $*"
}

# still alive and still our child? (bash reaps exited children at once; a pid it reaped
# may be reused by an unrelated process, which would not have this shell as its parent)
our_running() { [ "$(ps -o ppid= -p "$1" 2>/dev/null | tr -d ' ')" = "$$" ]; }

stop_pid() { # pid [grace seconds]
  local pid=$1 grace=${2:-5} i
  [ -n "${REAPED[$pid]:-}" ] && return 0
  REAPED[$pid]=1
  our_running "$pid" || { wait "$pid" 2>/dev/null; return 0; }
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
  kill -CONT -- "-$pid" 2>/dev/null  # in case we froze it (failover test)
  for ((i = 0; i < grace * 10; i++)); do
    our_running "$pid" || break
    sleep 0.1
  done
  if our_running "$pid"; then
    log "${NAME_OF[$pid]:-$pid} ignored SIGTERM, killing"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  return 0
}

cleanup() {
  local pid
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid=${PIDS[$i]}
    stop_pid "$pid" 5
  done
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

port_busy() { # port -> 0 if a UDP socket is bound on it
  [ -n "$(ss -Hlun "sport = :$1" 2>/dev/null)" ]
}

wait_udp_listen() { # port seconds
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    port_busy "$1" && return 0
    sleep 0.1
  done
  return 1
}

relay_cmd() { # instance(1|2) -> command line on stdout
  local inst=$1 ng pr tmpl
  if [ "$inst" = 1 ]; then ng=$NG_PORT1; pr=$PORTS1; tmpl=$RELAY_CMD
  else ng=$NG_PORT2; pr=$PORTS2; tmpl=$RELAY_CMD
    if [[ "$tmpl" != *"{NG_PORT}"* ]]; then tmpl=$RELAY_CMD2; fi
  fi
  tmpl=${tmpl//\{NG_PORT\}/$ng}
  tmpl=${tmpl//\{PORT_MIN\}/${pr%-*}}
  tmpl=${tmpl//\{PORT_MAX\}/${pr#*-}}
  tmpl=${tmpl//\{HTTP_PORT\}/$((ng + 100))}
  tmpl=${tmpl//\{INTERFACES\}/$INTERFACES}
  printf '%s\n' "$tmpl"
}

# With METRICS=1 the relay serves Prometheus text on NG port + 100
# ({HTTP_PORT} in RELAY_CMD): teardown then also checks the port pool.
ports_in_use() { # ng-port -> port pairs in use, from /metrics
  python3 - "$1" <<'PY' 2>/dev/null || echo 999
import sys, urllib.request
url = "http://127.0.0.1:%d/metrics" % (int(sys.argv[1]) + 100)
for line in urllib.request.urlopen(url, timeout=5).read().decode().splitlines():
    if line.startswith('mediarelay_port_pairs{state="in_use"}'):
        print(int(float(line.split()[-1])))
        break
else:
    print(999)
PY
}

# ---------------------------------------------------------------- preflight
for tool in kamailio sipp python3 ss setsid timeout; do
  command -v "$tool" >/dev/null || { echo "setup: $tool not found (tests/kamailio/install-deps.sh)" >&2; exit 2; }
done
if ! kamailio -c -f "$KAMAILIO_CFG" >"$WORKDIR/kamailio-check.log" 2>&1; then
  echo "setup: kamailio -c failed (rtpengine module missing?), see $WORKDIR/kamailio-check.log" >&2
  tail -5 "$WORKDIR/kamailio-check.log" >&2
  exit 2
fi
if [ "$MODE" = two ] && [[ "$RELAY_CMD" != *"{NG_PORT}"* ]] && [ -z "$RELAY_CMD2" ]; then
  echo "setup: --two needs RELAY_CMD with {NG_PORT}/{PORT_MIN}/{PORT_MAX} placeholders, or RELAY_CMD2" >&2
  exit 2
fi
NG_PORTS=("$NG_PORT1")
[ "$MODE" = two ] && NG_PORTS+=("$NG_PORT2")
for p in "$SIP_PORT" "$UAC_PORT" "$UAS_PORT" "$UAC_MEDIA_PORT" "$UAS_MEDIA_PORT" "${NG_PORTS[@]}"; do
  if port_busy "$p"; then
    echo "setup: UDP port $p is already in use (another rig or relay running?); override with the env vars in $0" >&2
    exit 2
  fi
done

python3 "$HERE/gen_media.py" "$WORKDIR" $(( CALL_MS / 1000 + 1 )) >/dev/null || { echo "setup: gen_media.py failed" >&2; exit 2; }

# ---------------------------------------------------------------- relays
RELAY_PIDS=()
T_START=$(date +%s.%N)
inst=0
for ngp in "${NG_PORTS[@]}"; do
  inst=$((inst + 1))
  cmd=$(relay_cmd "$inst")
  # word-split the command line like a shell would (it is ours or the caller's)
  start_bg "relay$inst" "$WORKDIR/relay$inst.log" bash -c "exec $cmd"
  RELAY_PIDS+=("$LAST_PID")
done
inst=0
for ngp in "${NG_PORTS[@]}"; do
  inst=$((inst + 1))
  if ! timeout 15 $NG --addr "$LOCALHOST:$ngp" wait-pong 10 >/dev/null; then
    echo "setup: relay$inst does not answer NG ping on $ngp; last log lines:" >&2
    tail -20 "$WORKDIR/relay$inst.log" >&2
    exit 2
  fi
  log "relay$inst answers ping on $LOCALHOST:$ngp"
done

# ---------------------------------------------------------------- kamailio
if [ "$MODE" = two ]; then
  SOCK="udp:$LOCALHOST:$NG_PORT1=1 udp:$LOCALHOST:$NG_PORT2=1"
else
  SOCK="udp:$LOCALHOST:$NG_PORT1"
fi
start_bg kamailio "$WORKDIR/kamailio.log" kamailio -f "$KAMAILIO_CFG" -DD -E \
  -Y "$WORKDIR/run" -w "$WORKDIR" -m 64 -M 8 \
  -A "RTPENGINE_SOCK=\"$SOCK\"" -A "SIP_LISTEN=udp:$LOCALHOST:$SIP_PORT" \
  -A "RTPE_TOUT_MS=$RTPE_TOUT_MS" -A "RTPE_RETR=$RTPE_RETR" -A "RTPE_DISABLE_TOUT=$RTPE_DISABLE_TOUT" \
  -A "RTPE_OFFER_FLAGS=\"$OFFER_FLAGS\""
KAM_PID=$LAST_PID
if ! wait_udp_listen "$SIP_PORT" 15; then
  echo "setup: kamailio not listening on $SIP_PORT" >&2; tail -20 "$WORKDIR/kamailio.log" >&2; exit 2
fi
sleep 0.5  # rtpengine module pings the set from its child init
if ! our_running "$KAM_PID"; then
  echo "setup: kamailio exited" >&2; tail -20 "$WORKDIR/kamailio.log" >&2; exit 2
fi

# ---------------------------------------------------------------- UAS
# the scenarios read tone.ulaw from the cwd
cd "$WORKDIR" || exit 2
start_bg uas "$WORKDIR/uas.out" sipp -sf "$HERE/uas.xml" -i "$UAS_IP" -p "$UAS_PORT" \
  -mi "$UAS_IP" -mp "$UAS_MEDIA_PORT" -cp $((UAS_PORT + 3000)) -nostdin \
  -trace_err -error_file "$WORKDIR/uas_errors.log" \
  -trace_screen -screen_file "$WORKDIR/uas_screen.log"
UAS_PID=$LAST_PID
if ! wait_udp_listen "$UAS_PORT" 10; then
  echo "setup: SIPp UAS not listening on $UAS_PORT" >&2; tail -20 "$WORKDIR/uas.out" >&2; exit 2
fi

# ---------------------------------------------------------------- one phase of calls
# run_phase NAME NG_PORT...   -> sets PH_RC PH_OK PH_FAILED PH_BIDIR PH_MAXSETUP PH_SECS
# (runs in $WORKDIR/NAME: SIPp writes its stats/rtt files into the cwd)
run_phase() {
  local name=$1; shift
  local ports=("$@") dir="$WORKDIR/$name"
  local stf="$dir/stats.csv" flows="$dir/flows.log"
  local limit=$(( CALLS / RATE + CALL_MS / 1000 + 30 ))
  local t0 t1 p line
  mkdir -p "$dir" && cp "$WORKDIR/tone.ulaw" "$WORKDIR/tone.pcap" "$dir/" && cd "$dir" || return 1
  : >"$flows"
  t0=$(date +%s.%N)
  setsid timeout "$limit" sipp -sf "$UAC_XML" "$UAS_IP:$UAS_PORT" -rsa "$LOCALHOST:$SIP_PORT" \
    -i "$LOCALHOST" -p "$UAC_PORT" -mi "$LOCALHOST" -mp "$UAC_MEDIA_PORT" -cp $((UAC_PORT + 3000)) \
    -m "$CALLS" -r "$RATE" -l "$CALLS" -d "$CALL_MS" -nostdin \
    -trace_stat -stf "$stf" -fd 1 -trace_rtt -rtt_freq 1 \
    -trace_err -error_file "$dir/uac_errors.log" \
    -trace_screen -screen_file "$dir/uac_screen.log" \
    >"$dir/uac.out" 2>&1 </dev/null &
  local uac=$!
  PIDS+=("$uac"); NAME_OF[$uac]="uac-$name"
  log "$name: UAC (pid $uac) placing $CALLS calls at $RATE/s, ${CALL_MS} ms each, limit ${limit}s"
  # poll the relays while the calls are up: which calls show RTP on both tags
  sleep 1
  local poll_end=$((SECONDS + limit + 10))  # belt and braces: timeout already bounds SIPp
  while our_running "$uac" && [ $SECONDS -lt $poll_end ]; do
    for p in "${ports[@]}"; do
      line=$(timeout 10 $NG --addr "$LOCALHOST:$p" flows 2>&1) && echo "$p $line" >>"$flows"
    done
    sleep 1
  done
  wait "$uac"
  PH_RC=$?
  REAPED[$uac]=1
  t1=$(date +%s.%N)
  PH_SECS=$(python3 -c "print('%.1f' % ($t1 - $t0))")
  # SIPp statistics: last row of the CSV, columns by header name
  read -r PH_OK PH_FAILED < <(python3 - "$stf" <<'PY'
import sys
try:
    rows = [l.rstrip("\n").split(";") for l in open(sys.argv[1]) if l.strip()]
    hdr, last = rows[0], rows[-1]
    col = lambda n: int(last[hdr.index(n)])
    print(col("SuccessfulCall(C)"), col("FailedCall(C)"))
except Exception as e:
    print(-1, -1)
PY
)
  PH_BIDIR=$(sed -n 's/.* ids=//p' "$flows" | tr ',' '\n' | sed '/^$/d' | sort -u | wc -l)
  PH_BRIDGED=$(sed -n 's/.* bridged_ids=\([^ ]*\) .*/\1/p' "$flows" | tr ',' '\n' | sed '/^$/d' | sort -u | wc -l)
  # call setup time (INVITE -> 200 OK) per call, from SIPp's rtt trace: "date;ms;rtd"
  PH_MAXSETUP=$(cat "$dir"/*_rtt.csv 2>/dev/null | awk -F';' '$2 ~ /^[0-9.]+$/ { if ($2 > m) m = $2 } END { printf "%d", m }')
  cd "$WORKDIR" || return 1
  log "$name: sipp rc=$PH_RC successful=$PH_OK failed=$PH_FAILED bidirectional=$PH_BIDIR max-setup=${PH_MAXSETUP}ms in ${PH_SECS}s"
}

check_phase() { # name
  local name=$1
  if [ "$PH_RC" = 0 ] && [ "$PH_OK" = "$CALLS" ] && [ "$PH_FAILED" = 0 ]; then
    pass "$name calls: $PH_OK/$CALLS successful (sipp rc=0, ${PH_SECS}s, max setup ${PH_MAXSETUP} ms)"
  else
    fail "$name calls: successful=$PH_OK failed=$PH_FAILED of $CALLS, sipp rc=$PH_RC (see $WORKDIR/$name/uac_errors.log)"
  fi
  if [ "$PH_BIDIR" -ge "$CALLS" ]; then
    pass "$name media: $PH_BIDIR/$CALLS calls showed RTP packets on both tags (NG query during the calls)"
  else
    fail "$name media: only $PH_BIDIR/$CALLS calls showed RTP on both tags (see $WORKDIR/$name/flows.log)"
  fi
  if [ "$MODE" = bridge ]; then
    if [ "$PH_BRIDGED" -ge "$CALLS" ]; then
      pass "$name bridge: $PH_BRIDGED/$CALLS calls relayed RTP both ways between the internal (127.0.0.1) and external (203.0.113.1) interfaces"
    else
      fail "$name bridge: only $PH_BRIDGED/$CALLS calls had streams on both interfaces (see $WORKDIR/$name/flows.log)"
    fi
  fi
}

check_deleted() { # name port...   all calls gone from every relay (bounded wait)
  local name=$1; shift
  local p n left deadline=$((SECONDS + DELETE_WAIT_S))
  while :; do
    left=0
    for p in "$@"; do
      n=$(timeout 10 $NG --addr "$LOCALHOST:$p" list 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("calls", [])))' 2>/dev/null || echo 999)
      left=$((left + n))
    done
    [ "$left" = 0 ] && break
    [ $SECONDS -ge $deadline ] && break
    sleep 0.5
  done
  if [ "$left" = 0 ]; then
    pass "$name teardown: NG list empty on relay(s) ${*} after BYE"
  else
    fail "$name teardown: $left call(s) still listed on relay(s) ${*} ${DELETE_WAIT_S}s after the last BYE"
  fi
  if [ "${METRICS:-0}" = 1 ]; then
    local used=0
    for p in "$@"; do used=$((used + $(ports_in_use "$p"))); done
    if [ "$used" = 0 ]; then
      pass "$name ports: no port pair in use on relay(s) ${*} after BYE (pool back to full)"
    else
      fail "$name ports: $used port pair(s) still in use on relay(s) ${*} after BYE"
    fi
  fi
}

sessions_of() { # port -> "handled relayed"
  timeout 10 $NG --addr "$LOCALHOST:$1" sessions 2>/dev/null |
    sed -n 's/^handled=\(-\{0,1\}[0-9]*\) current=[-0-9]* relayed=\(-\{0,1\}[0-9]*\).*/\1 \2/p'
}

# ---------------------------------------------------------------- phase 1
run_phase phase1 "${NG_PORTS[@]}"
check_phase phase1
check_deleted phase1 "${NG_PORTS[@]}"

declare -A HANDLED
inst=0
for p in "${NG_PORTS[@]}"; do
  inst=$((inst + 1))
  read -r h r < <(sessions_of "$p"; echo)
  HANDLED[$p]=${h:--1}
  log "relay$inst ($p): sessions handled=${h:-?} relayed packets=${r:-?}"
done

if [ "$MODE" = one ] || [ "$MODE" = bridge ]; then
  if [ "${HANDLED[$NG_PORT1]}" -ge "$CALLS" ] 2>/dev/null; then
    pass "relay statistics: ${HANDLED[$NG_PORT1]} sessions handled"
  else
    fail "relay statistics: ${HANDLED[$NG_PORT1]} sessions handled, expected >= $CALLS"
  fi
else
  h1=${HANDLED[$NG_PORT1]} h2=${HANDLED[$NG_PORT2]}
  if [ "$h1" -gt 0 ] 2>/dev/null && [ "$h2" -gt 0 ] 2>/dev/null && [ $((h1 + h2)) -ge "$CALLS" ]; then
    pass "distribution: relay1 handled $h1, relay2 handled $h2 sessions (set weights 1:1)"
  else
    fail "distribution: relay1 handled $h1, relay2 handled $h2 sessions; both must be > 0"
  fi

  # ------------------------------------------------------------ phase 2: relay2 hangs
  # SIGSTOP: the NG port stays bound but nothing answers, as with a hung or unreachable
  # host. Each offer that hashes to relay2 waits RTPE_TOUT_MS * (RTPE_RETR + 1), then
  # Kamailio disables relay2 for RTPE_DISABLE_TOUT s and uses relay1.
  log "freezing relay2 (SIGSTOP, pid ${RELAY_PIDS[1]})"
  kill -STOP -- "-${RELAY_PIDS[1]}"
  run_phase phase2-hang "$NG_PORT1"
  check_phase phase2-hang
  check_deleted phase2-hang "$NG_PORT1"
  read -r h r < <(sessions_of "$NG_PORT1"; echo)
  if [ "${h:--1}" -ge $((h1 + CALLS)) ] 2>/dev/null; then
    pass "failover (relay2 hung): relay1 took all $CALLS new calls (handled $h1 -> $h)"
  else
    fail "failover (relay2 hung): relay1 handled $h1 -> ${h:-?}, expected +$CALLS"
  fi
  if [ "$PH_MAXSETUP" -le "$FAILOVER_MAX_MS" ] 2>/dev/null; then
    pass "failover delay (relay2 hung): slowest call setup ${PH_MAXSETUP} ms <= ${FAILOVER_MAX_MS} ms"
  else
    fail "failover delay (relay2 hung): slowest call setup ${PH_MAXSETUP} ms > ${FAILOVER_MAX_MS} ms"
  fi
  h1=${h:-$h1}

  # ------------------------------------------------------------ phase 3: relay2 gone
  # process stopped: on loopback the kernel answers ICMP port unreachable at once
  log "stopping relay2 (SIGTERM, pid ${RELAY_PIDS[1]})"
  stop_pid "${RELAY_PIDS[1]}" 5
  run_phase phase3-killed "$NG_PORT1"
  check_phase phase3-killed
  check_deleted phase3-killed "$NG_PORT1"
  read -r h r < <(sessions_of "$NG_PORT1"; echo)
  if [ "${h:--1}" -ge $((h1 + CALLS)) ] 2>/dev/null; then
    pass "failover (relay2 stopped): relay1 took all $CALLS new calls (handled $h1 -> $h)"
  else
    fail "failover (relay2 stopped): relay1 handled $h1 -> ${h:-?}, expected +$CALLS"
  fi
  log "kamailio errors naming relay2: $(grep -c "rtpengine.*$NG_PORT2" "$WORKDIR/kamailio.log")"
fi

# a Kamailio that died mid-test is a failure even if SIPp somehow passed
if ! our_running "$KAM_PID"; then fail "kamailio exited during the test"; fi
if ! our_running "$UAS_PID"; then fail "SIPp UAS exited during the test"; fi

T_END=$(date +%s.%N)
echo
echo "================ SUMMARY (mode=$MODE, $CALLS calls/phase, $(python3 -c "print('%.1f' % ($T_END - $T_START))")s) ================"
echo "relay: $(relay_cmd 1)"
echo "media: UAC $MEDIA, UAS rtp_stream; $CALLS calls/phase at $RATE/s, $CALL_MS ms each"
for s in "${SUMMARY[@]}"; do echo "$s"; done
echo "logs: $WORKDIR"
if [ "$FAILS" = 0 ] && [ "$PASSES" -gt 0 ]; then echo "RESULT: PASS"; else echo "RESULT: FAIL"; fi
echo "$PASSES passed, $FAILS failed"
[ "$FAILS" = 0 ] && [ "$PASSES" -gt 0 ]
