#!/usr/bin/env python3
"""Tiny NG-protocol client (rtpengine's control protocol), stdlib only.

Wire format: one UDP datagram "<cookie> <bencoded dict>", the reply is
"<same cookie> <bencoded dict>". Bencode is done by hand below.

CLI (prints the decoded reply as JSON, exit 0 if result is ok/pong):
    ng.py [--addr 127.0.0.1:2223] [--timeout 1.0] ping
    ng.py ... list [LIMIT]
    ng.py ... query CALL-ID [FROM-TAG]
    ng.py ... statistics
    ng.py ... delete CALL-ID [FROM-TAG]
Helpers used by run.sh (print one line of key=value, exit 0 unless the relay is unreachable):
    ng.py ... flows            list + query every call: calls=N bidir=M ids=<bidirectional call-ids>
    ng.py ... sessions         sessions handled so far (totalstatistics), current sessions
    ng.py ... wait-pong SECS   retry ping until pong or SECS elapse (exit 1 on timeout)
"""
import json
import os
import socket
import sys
import time


# ---------------------------------------------------------------- bencode
def bencode(v):
    if isinstance(v, bool):
        v = int(v)
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, (bytes, bytearray)):
        return b"%d:%s" % (len(v), bytes(v))
    if isinstance(v, (list, tuple)):
        return b"l" + b"".join(bencode(x) for x in v) + b"e"
    if isinstance(v, dict):
        out = b"d"
        for k in sorted(v, key=lambda k: k.encode() if isinstance(k, str) else k):
            out += bencode(k) + bencode(v[k])
        return out + b"e"
    raise TypeError("cannot bencode %r" % type(v))


def bdecode(data, i=0):
    """Decode one value starting at data[i]; return (value, next_index).
    Byte strings are returned as str (utf-8, undecodable bytes replaced)."""
    c = data[i:i + 1]
    if c == b"i":
        j = data.index(b"e", i)
        return int(data[i + 1:j]), j + 1
    if c == b"l":
        i += 1
        out = []
        while data[i:i + 1] != b"e":
            v, i = bdecode(data, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        i += 1
        out = {}
        while data[i:i + 1] != b"e":
            k, i = bdecode(data, i)
            v, i = bdecode(data, i)
            out[k] = v
        return out, i + 1
    if c.isdigit():
        j = data.index(b":", i)
        n = int(data[i:j])
        s = data[j + 1:j + 1 + n]
        if len(s) != n:
            raise ValueError("truncated string at %d" % i)
        return s.decode("utf-8", "replace"), j + 1 + n
    raise ValueError("bad bencode at offset %d: %r" % (i, data[i:i + 10]))


# ---------------------------------------------------------------- transport
_seq = 0


def ng_request(addr, msg, timeout=1.0, retries=2):
    """Send one NG command (dict), return the decoded reply dict.
    Retransmits with the same cookie (the relay must answer from its cache)."""
    global _seq
    _seq += 1
    cookie = ("%d_%d" % (os.getpid(), _seq)).encode()
    host, port = addr.rsplit(":", 1)
    payload = cookie + b" " + bencode(msg)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        for _ in range(retries + 1):
            s.sendto(payload, (host, int(port)))
            try:
                while True:
                    data, _src = s.recvfrom(65535)
                    ck, _, body = data.partition(b" ")
                    if ck == cookie:
                        v, _ = bdecode(body)
                        return v
            except socket.timeout:
                continue
            except ConnectionRefusedError:
                time.sleep(timeout)
                continue
    raise TimeoutError("no NG reply from %s for %s" % (addr, msg.get("command")))


# ---------------------------------------------------------------- helpers
def tag_packets(query_reply):
    """{tag: packets summed over all streams of all medias} from a query reply."""
    out = {}
    tags = query_reply.get("tags") or {}
    if isinstance(tags, list):  # tolerate a list of tag dicts
        tags = {t.get("tag", str(i)): t for i, t in enumerate(tags)}
    for tag, td in tags.items():
        n = 0
        for m in td.get("medias") or []:
            for st in m.get("streams") or []:
                stats = st.get("stats") or {}
                n += int(stats.get("packets", 0) or 0)
        out[tag] = n
    return out


def list_calls(addr, timeout, limit=10000):
    r = ng_request(addr, {"command": "list", "limit": limit}, timeout)
    return list(r.get("calls") or [])


def local_addresses(query_reply):
    """The relay's local addresses over every stream of a query reply."""
    out = set()
    tags = query_reply.get("tags") or {}
    if isinstance(tags, list):
        tags = {str(i): t for i, t in enumerate(tags)}
    for td in tags.values():
        for m in td.get("medias") or []:
            for st in m.get("streams") or []:
                a = st.get("local address")
                if a:
                    out.add(a)
    return out


def flows(addr, timeout):
    """Call-ids where at least two tags have received packets (RTP crossed both ways),
    and those of them whose streams sit on two or more local addresses (bridged)."""
    calls = list_calls(addr, timeout)
    bidir = []
    bridged = []
    for cid in calls:
        try:
            q = ng_request(addr, {"command": "query", "call-id": cid}, timeout)
        except TimeoutError:
            continue
        if q.get("result") != "ok":
            continue
        tp = tag_packets(q)
        if sum(1 for n in tp.values() if n > 0) >= 2:
            bidir.append(cid)
            if len(local_addresses(q)) >= 2:
                bridged.append(cid)
    return calls, bidir, bridged


def sessions(addr, timeout):
    """(handled_total, current, relayed_packets, source_key) from the statistics reply.
    rtpengine 10.5 nests everything under "statistics"; a flat reply is accepted too."""
    st = ng_request(addr, {"command": "statistics"}, timeout)
    st = st.get("statistics", st)
    tot = st.get("totalstatistics") or {}
    cur = st.get("currentstatistics") or {}
    ctl = st.get("controlstatistics") or {}
    handled, key = None, None
    for k in ("managedsessions", "sessions", "totalsessions"):
        if k in tot:
            handled, key = int(tot[k]), "totalstatistics." + k
            break
    if not handled:  # 0 or absent: fall back on the number of offers seen
        for k in ("totaloffercount", "offercount", "offer", "offers"):
            if k in ctl and int(ctl[k]) > 0:
                handled, key = int(ctl[k]), "controlstatistics." + k
                break
    if handled is None:
        handled, key = -1, "none"
    current = -1
    for k in ("sessionstotal", "sessions", "sessionsown"):
        if k in cur:
            current = int(cur[k])
            break
    relayed = int(tot.get("relayedpackets", tot.get("packets", -1)))
    return handled, current, relayed, key


def main(argv):
    addr = os.environ.get("NG_ADDR", "127.0.0.1:2223")
    timeout = 1.0
    args = list(argv)
    while args and args[0].startswith("--"):
        opt = args.pop(0)
        if opt == "--addr":
            addr = args.pop(0)
        elif opt == "--timeout":
            timeout = float(args.pop(0))
        else:
            print("unknown option %s" % opt, file=sys.stderr)
            return 2
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, rest = args[0], args[1:]
    try:
        if cmd == "wait-pong":
            deadline = time.time() + float(rest[0] if rest else 10)
            while time.time() < deadline:
                try:
                    if ng_request(addr, {"command": "ping"}, 0.3, 0).get("result") == "pong":
                        print("pong from %s" % addr)
                        return 0
                except (TimeoutError, OSError):
                    pass
                time.sleep(0.2)
            print("no pong from %s" % addr, file=sys.stderr)
            return 1
        if cmd == "flows":
            calls, bidir, bridged = flows(addr, timeout)
            print("calls=%d bidir=%d bridged_ids=%s ids=%s"
                  % (len(calls), len(bidir), ",".join(bridged), ",".join(bidir)))
            return 0
        if cmd == "sessions":
            handled, current, relayed, key = sessions(addr, timeout)
            print("handled=%d current=%d relayed=%d key=%s" % (handled, current, relayed, key))
            return 0
        if cmd == "list":
            msg = {"command": "list"}
            if rest:
                msg["limit"] = int(rest[0])
        elif cmd in ("query", "delete"):
            msg = {"command": cmd, "call-id": rest[0]}
            if len(rest) > 1:
                msg["from-tag"] = rest[1]
        elif cmd in ("ping", "statistics"):
            msg = {"command": cmd}
        else:
            print("unknown command %s" % cmd, file=sys.stderr)
            return 2
        r = ng_request(addr, msg, timeout)
    except (TimeoutError, OSError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 3
    print(json.dumps(r, indent=1, sort_keys=True))
    return 0 if r.get("result") in ("ok", "pong") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
