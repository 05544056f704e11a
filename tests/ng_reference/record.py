#!/usr/bin/env python3
"""Record rtpengine's real NG-protocol behaviour as golden files.

Drives a reference rtpengine (Sipwise, 10.5) over its NG control protocol
(bencode over UDP) through a set of scenarios and stores, for every step, the
exact request datagram and the exact reply datagram plus a decoded JSON view:

    tests/data/ng/<scenario>/NN-<label>.req.bencode   raw datagram as sent ("<cookie> <bencode>")
    tests/data/ng/<scenario>/NN-<label>.req.json      decoded view
    tests/data/ng/<scenario>/NN-<label>.rep.bencode   raw datagram as received (absent if no reply)
    tests/data/ng/<scenario>/NN-<label>.rep.json      decoded view (or {"no_reply": true, ...})

Scenarios that exchange RTP also store rtp.json (what each peer received).

Standard library only. Traffic goes to 127.0.0.0/8 only.

Usage:
    python3 tests/ng_reference/record.py --spawn --isolate   # what produced tests/data/ng/
    python3 tests/ng_reference/record.py --spawn          # start rtpengine itself, record, stop it
    python3 tests/ng_reference/record.py --ng 127.0.0.1:2223   # use an already running daemon

With --spawn the daemon is started as
    rtpengine --config-file=none --table=-1 --interface=127.0.0.1 \
      --listen-ng=127.0.0.1:2223 --port-min=30000 --port-max=30999 --foreground --log-stderr
its full stderr goes to /tmp/ngref-rtpengine-stderr.log and the non-INFO lines
(warnings with the reasons behind errors) to tests/data/ng/rtpengine-warnings.log.

--isolate re-executes the script under `unshare -n` (a fresh network namespace
with only loopback, root needed): rtpengine and all peers then live there, and
nothing can leave the machine. The sdp-fixtures group (tests/data/sdp/*.sdp sent
verbatim; they carry documentation/private addresses) only runs when isolated.

Call-ids and cookies are deterministic with --spawn (fresh daemon); against an
already running daemon a time-based suffix keeps them fresh. Ports, timestamps,
ICE credentials and statistics differ between runs.
"""

import argparse
import json
import os
import random
import select
import shutil
import socket
import struct
import subprocess
import sys
import time

# --------------------------------------------------------------------------
# bencode


def bencode(obj):
    """Encode str/bytes/int/list/dict. Dict keys are written in insertion order
    (as Kamailio's rtpengine module does); pass sort_keys via bencode_sorted."""
    if isinstance(obj, bool):
        raise TypeError("bool is not bencodable")
    if isinstance(obj, int):
        return b"i%de" % obj
    if isinstance(obj, str):
        obj = obj.encode("utf-8")
    if isinstance(obj, (bytes, bytearray)):
        return b"%d:%s" % (len(obj), bytes(obj))
    if isinstance(obj, (list, tuple)):
        return b"l" + b"".join(bencode(x) for x in obj) + b"e"
    if isinstance(obj, dict):
        out = [b"d"]
        for k, v in obj.items():
            out.append(bencode(k))
            out.append(bencode(v))
        out.append(b"e")
        return b"".join(out)
    raise TypeError("cannot bencode %r" % type(obj))


class BencodeError(ValueError):
    pass


def _bdecode_at(data, i):
    if i >= len(data):
        raise BencodeError("unexpected end of data at %d" % i)
    c = data[i:i + 1]
    if c == b"i":
        end = data.find(b"e", i)
        if end < 0:
            raise BencodeError("unterminated integer at %d" % i)
        return int(data[i + 1:end]), end + 1
    if c == b"l":
        i += 1
        out = []
        while True:
            if i >= len(data):
                raise BencodeError("unterminated list")
            if data[i:i + 1] == b"e":
                return out, i + 1
            v, i = _bdecode_at(data, i)
            out.append(v)
    if c == b"d":
        i += 1
        out = {}
        while True:
            if i >= len(data):
                raise BencodeError("unterminated dictionary")
            if data[i:i + 1] == b"e":
                return out, i + 1
            k, i = _bdecode_at(data, i)
            if not isinstance(k, bytes):
                raise BencodeError("dictionary key is not a string")
            v, i = _bdecode_at(data, i)
            out[k] = v
    if c.isdigit():
        colon = data.find(b":", i)
        if colon < 0:
            raise BencodeError("string length without colon at %d" % i)
        n = int(data[i:colon])
        start = colon + 1
        if start + n > len(data):
            raise BencodeError("string runs past end of data at %d" % i)
        return data[start:start + n], start + n
    raise BencodeError("unexpected byte %r at %d" % (c, i))


def bdecode(data):
    v, end = _bdecode_at(data, 0)
    if end != len(data):
        raise BencodeError("trailing data after offset %d" % end)
    return v


def to_json_view(obj):
    """Byte strings become text where they are valid UTF-8, else {"hex": ...}.
    Dict order is kept as on the wire."""
    if isinstance(obj, bytes):
        try:
            return obj.decode("utf-8")
        except UnicodeDecodeError:
            return {"hex": obj.hex()}
    if isinstance(obj, list):
        return [to_json_view(x) for x in obj]
    if isinstance(obj, dict):
        return {to_json_view(k) if isinstance(k, bytes) else k: to_json_view(v) for k, v in obj.items()}
    return obj


def datagram_view(raw):
    """Decoded view of a whole NG datagram '<cookie> <bencode>'."""
    view = {}
    sp = raw.find(b" ")
    if sp < 0:
        view["cookie"] = None
        body = raw
    else:
        view["cookie"] = to_json_view(raw[:sp])
        body = raw[sp + 1:]
    try:
        view["message"] = to_json_view(bdecode(body))
    except (BencodeError, ValueError) as e:
        view["raw"] = to_json_view(body)
        view["decode_error"] = str(e)
    return view


# --------------------------------------------------------------------------
# NG client + recorder

OUT_ROOT = None
NG_ADDR = ("127.0.0.1", 2223)
RUN = ""  # suffix for call-ids / cookies when not running a fresh daemon
_cookie_counter = [0]


def next_cookie():
    _cookie_counter[0] += 1
    return "ngref%s_%d" % (RUN, _cookie_counter[0])


def cid(name):
    return "ngref-%s%s" % (name, RUN)


class Scenario:
    def __init__(self, name):
        self.name = name
        self.dir = os.path.join(OUT_ROOT, name)
        if os.path.isdir(self.dir):
            shutil.rmtree(self.dir)
        os.makedirs(self.dir)
        self.n = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.notes = {}

    def _write(self, fname, data):
        with open(os.path.join(self.dir, fname), "wb") as f:
            f.write(data)

    def _write_json(self, fname, obj):
        with open(os.path.join(self.dir, fname), "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, ensure_ascii=False)
            f.write("\n")

    def raw(self, label, datagram, timeout=1.5, expect_cookie=None):
        """Send a raw datagram, record it and whatever comes back."""
        self.n += 1
        base = "%02d-%s" % (self.n, label)
        self._write(base + ".req.bencode", datagram)
        self._write_json(base + ".req.json", datagram_view(datagram))
        # drain stale replies
        self.sock.setblocking(False)
        try:
            while True:
                self.sock.recvfrom(65535)
        except BlockingIOError:
            pass
        self.sock.setblocking(True)
        self.sock.settimeout(timeout)
        t0 = time.monotonic()
        self.sock.sendto(datagram, NG_ADDR)
        try:
            rep, src = self.sock.recvfrom(65535)
        except socket.timeout:
            self._write_json(base + ".rep.json", {"no_reply": True, "waited_s": timeout})
            return None
        elapsed = time.monotonic() - t0
        self._write(base + ".rep.bencode", rep)
        view = datagram_view(rep)
        self._write_json(base + ".rep.json", view)
        sys.stderr.write("  %s/%s: %s (%.1f ms)\n" % (
            self.name, base, (view.get("message") or {}).get("result") if isinstance(view.get("message"), dict) else view,
            elapsed * 1000))
        msg = view.get("message")
        return {"raw": rep, "view": view, "msg": msg if isinstance(msg, dict) else None,
                "decoded": bdecode(rep[rep.find(b" ") + 1:]) if "message" in view else None}

    def cmd(self, label, msg, cookie=None, timeout=1.5):
        cookie = cookie or next_cookie()
        datagram = cookie.encode() + b" " + bencode(msg)
        r = self.raw(label, datagram, timeout=timeout)
        if r is not None:
            got = r["view"].get("cookie")
            if got != cookie:
                r["cookie_mismatch"] = got
        return r

    def note(self, key, value):
        self.notes[key] = value
        self._write_json("notes.json", self.notes)


# --------------------------------------------------------------------------
# SDP helpers

def sdp(lines):
    return "".join(l + "\r\n" for l in lines)


def sdp_a(addr, port, sess="1111", ver="1", name="A", direction="sendrecv", extra_media=(),
          extra_session=(), origin_addr=None, user="-"):
    lines = [
        "v=0",
        "o=%s %s %s IN IP4 %s" % (user, sess, ver, origin_addr or addr),
        "s=%s" % name,
        "c=IN IP4 %s" % addr,
        "t=0 0",
    ]
    lines += list(extra_session)
    lines += [
        "m=audio %d RTP/AVP 0 8 101" % port,
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=ptime:20",
    ]
    lines += list(extra_media)
    if direction:
        lines.append("a=%s" % direction)
    return sdp(lines)


def sdp_lines(s):
    return s.split("\r\n") if isinstance(s, str) else None


def reply_sdp(r):
    if not r or not r["msg"]:
        return None
    return r["msg"].get("sdp")


def media_port(sdp_text, index=0):
    n = 0
    for line in sdp_text.split("\r\n"):
        if line.startswith("m="):
            if n == index:
                return int(line.split()[1])
            n += 1
    return None


def sdp_line(sdp_text, prefix):
    for line in sdp_text.split("\r\n"):
        if line.startswith(prefix):
            return line
    return None


def udp_sock(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 0))
    return s


def free_port_pair(addr):
    """Bind an even RTP port with the odd RTCP port next to it."""
    for _ in range(200):
        p = random.randrange(40000, 60000, 2)
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            a.bind((addr, p))
            b.bind((addr, p + 1))
            return a, b
        except OSError:
            a.close()
            b.close()
    raise RuntimeError("no free port pair")


# --------------------------------------------------------------------------
# RTP

def rtp_packet(seq, ts, ssrc, side, size=172):
    hdr = struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)
    payload = bytes(((side * 37 + seq + i) & 0xFF) for i in range(size - 12))
    return hdr + payload


def exchange_rtp(a_sock, a_dest, b_sock, b_dest, count=50, interval=0.02, a_first_only=False):
    """A sends `count` packets to a_dest, B sends `count` to b_dest, paced.
    Returns what each side received."""
    sent_a = {}
    sent_b = {}
    recv = {"A": [], "B": []}
    a_sock.setblocking(False)
    b_sock.setblocking(False)

    def drain():
        for s, who in ((a_sock, "A"), (b_sock, "B")):
            while True:
                try:
                    data, src = s.recvfrom(65535)
                except BlockingIOError:
                    break
                recv[who].append((data, src, time.monotonic()))

    t0 = time.monotonic()
    for i in range(count):
        pa = rtp_packet(1000 + i, 160 * i, 0x11111111, 1)
        pb = rtp_packet(5000 + i, 8000 + 160 * i, 0x22222222, 2)
        sent_a[1000 + i] = pa
        sent_b[5000 + i] = pb
        a_sock.sendto(pa, a_dest)
        b_sock.sendto(pb, b_dest)
        drain()
        target = t0 + (i + 1) * interval
        while True:
            now = time.monotonic()
            if now >= target:
                break
            r, _, _ = select.select([a_sock, b_sock], [], [], target - now)
            if r:
                drain()
    # settle
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        r, _, _ = select.select([a_sock, b_sock], [], [], 0.1)
        if r:
            drain()

    def summarize(who, sent, sender_dest):
        pkts = recv[who]
        srcs = {}
        identical = 0
        changed = []
        for data, src, _ in pkts:
            key = "%s:%d" % src
            srcs[key] = srcs.get(key, 0) + 1
            if len(data) >= 12:
                seq = struct.unpack("!H", data[2:4])[0]
                orig = sent.get(seq)
                if orig == data:
                    identical += 1
                elif len(changed) < 3:
                    changed.append({"len": len(data), "hex_head": data[:16].hex(),
                                    "orig_hex_head": orig[:16].hex() if orig else None})
        seqs = [struct.unpack("!H", d[2:4])[0] for d, _, _ in pkts if len(d) >= 12]
        return {
            "received": len(pkts),
            "sizes": sorted(set(len(d) for d, _, _ in pkts)),
            "from": srcs,
            "byte_identical_to_sent": identical,
            "changed_examples": changed,
            "in_order": seqs == sorted(seqs),
            "first_seq": seqs[0] if seqs else None,
            "last_seq": seqs[-1] if seqs else None,
        }

    return {
        "A_received": summarize("A", sent_b, None),
        "B_received": summarize("B", sent_a, None),
        "A_sent": {"count": count, "size": 172, "to": "%s:%d" % a_dest,
                   "from": "%s:%d" % a_sock.getsockname()},
        "B_sent": {"count": count, "size": 172, "to": "%s:%d" % b_dest,
                   "from": "%s:%d" % b_sock.getsockname()},
    }


def rtcp_sr(ssrc, n):
    # V=2, RC=0, PT=200 (SR), length 6 words -> 28 bytes
    return struct.pack("!BBHIIIIII", 0x80, 200, 6, ssrc, 0xE0000000 + n, 0, 160 * n, n, 160 * n)


def collect(socks, wait=0.4):
    """Read everything arriving on the named sockets for `wait` seconds."""
    got = {name: [] for name in socks}
    end = time.monotonic() + wait
    for sk in socks.values():
        sk.setblocking(False)
    while True:
        left = end - time.monotonic()
        if left <= 0:
            break
        r, _, _ = select.select(list(socks.values()), [], [], left)
        for name, sk in socks.items():
            if sk in r:
                while True:
                    try:
                        data, src = sk.recvfrom(65535)
                    except BlockingIOError:
                        break
                    got[name].append((data, src))
    return got


def summarize_got(got, sent_by_payload):
    out = {}
    for name, pkts in got.items():
        srcs = {}
        origin = {}
        for data, src in pkts:
            key = "%s:%d" % src
            srcs[key] = srcs.get(key, 0) + 1
            o = sent_by_payload.get(data, "unknown/modified")
            origin[o] = origin.get(o, 0) + 1
        out[name] = {"received": len(pkts), "from": srcs, "packets_originally_sent_by": origin}
    return out


def exchange_rtcp(a_rtcp, a_dest, b_rtcp, b_dest, count=3):
    sent = {}
    for i in range(count):
        pa, pb = rtcp_sr(0x11111111, i), rtcp_sr(0x22222222, i)
        sent[pa] = "A_rtcp"
        sent[pb] = "B_rtcp"
        a_rtcp.sendto(pa, a_dest)
        b_rtcp.sendto(pb, b_dest)
        time.sleep(0.02)
    got = collect({"A_rtcp": a_rtcp, "B_rtcp": b_rtcp})
    return {"A_rtcp_sent": {"count": count, "size": 28, "to": "%s:%d" % a_dest,
                            "from": "%s:%d" % a_rtcp.getsockname()},
            "B_rtcp_sent": {"count": count, "size": 28, "to": "%s:%d" % b_dest,
                            "from": "%s:%d" % b_rtcp.getsockname()},
            "received": summarize_got(got, sent)}


# --------------------------------------------------------------------------
# scenarios

def sc_ping():
    s = Scenario("ping")
    s.cmd("ping", {"command": "ping"})
    s.cmd("ping-with-extra-keys", {"command": "ping", "call-id": "ignored", "x": [1, 2]})
    s.cmd("statistics-fresh-daemon", {"command": "statistics"})
    s.cmd("list-empty", {"command": "list"})


def basic_call(name, a_addr, b_addr):
    s = Scenario(name)
    call = cid(name)
    a_rtp, a_rtcp = free_port_pair(a_addr)
    b_rtp, b_rtcp = free_port_pair(b_addr)
    a_port = a_rtp.getsockname()[1]
    b_port = b_rtp.getsockname()[1]
    s.note("A_rtp", "%s:%d" % (a_addr, a_port))
    s.note("B_rtp", "%s:%d" % (b_addr, b_port))

    offer_sdp = sdp_a(a_addr, a_port, sess="1111", ver="1", name="A")
    r_off = s.cmd("offer", {
        "command": "offer", "call-id": call, "from-tag": "tagA", "via-branch": "z9hG4bK-a1",
        "sdp": offer_sdp, "flags": [], "replace": [],
    })
    off_sdp = reply_sdp(r_off)
    answer_sdp = sdp_a(b_addr, b_port, sess="2222", ver="1", name="B")
    r_ans = s.cmd("answer", {
        "command": "answer", "call-id": call, "from-tag": "tagA", "to-tag": "tagB",
        "via-branch": "z9hG4bK-a1", "sdp": answer_sdp,
    })
    ans_sdp = reply_sdp(r_ans)
    port_in_offer_reply = media_port(off_sdp)
    port_in_answer_reply = media_port(ans_sdp)
    s.note("port_in_offer_reply_sdp (given to B)", port_in_offer_reply)
    s.note("port_in_answer_reply_sdp (given to A)", port_in_answer_reply)

    rtp = exchange_rtp(a_rtp, ("127.0.0.1", port_in_answer_reply),
                       b_rtp, ("127.0.0.1", port_in_offer_reply))
    # RTCP sockets: anything arrive during the RTP phase?
    for nm, sk in (("A_rtcp", a_rtcp), ("B_rtcp", b_rtcp)):
        sk.setblocking(False)
        got = 0
        try:
            while True:
                sk.recvfrom(65535)
                got += 1
        except BlockingIOError:
            pass
        rtp[nm + "_socket_received_during_rtp"] = got
    s._write_json("rtp.json", rtp)
    # RTCP: to the a=rtcp port of the SDP each side was given
    rtcp_a_dest = int(sdp_line(ans_sdp, "a=rtcp:").split(":")[1].split()[0])
    rtcp_b_dest = int(sdp_line(off_sdp, "a=rtcp:").split(":")[1].split()[0])
    s._write_json("rtcp.json", exchange_rtcp(a_rtcp, ("127.0.0.1", rtcp_a_dest),
                                             b_rtcp, ("127.0.0.1", rtcp_b_dest)))

    s.cmd("query", {"command": "query", "call-id": call})
    s.cmd("query-from-tag", {"command": "query", "call-id": call, "from-tag": "tagA"})
    s.cmd("list", {"command": "list"})
    s.cmd("list-limit-1", {"command": "list", "limit": 1})
    s.cmd("statistics", {"command": "statistics"})
    s.cmd("delete", {"command": "delete", "call-id": call, "from-tag": "tagA", "to-tag": "tagB",
                     "via-branch": "z9hG4bK-a1"})
    s.cmd("query-after-delete", {"command": "query", "call-id": call})
    for sk in (a_rtp, a_rtcp, b_rtp, b_rtcp):
        sk.close()
    return s


def sc_basic_call():
    basic_call("basic-call", "127.0.0.1", "127.0.0.1")


def sc_basic_call_distinct_addresses():
    # Peers on other loopback addresses so that c=/o= rewriting is visible.
    basic_call("basic-call-distinct-addresses", "127.0.0.11", "127.0.0.12")


def sc_wrong_direction():
    """A sends to the port from the OFFER reply (the one meant for B), B sends to
    the port from the ANSWER reply (meant for A)."""
    name = "rtp-wrong-direction"
    s = Scenario(name)
    call = cid(name)
    a_rtp, a_rtcp = free_port_pair("127.0.0.1")
    b_rtp, b_rtcp = free_port_pair("127.0.0.1")
    a_port = a_rtp.getsockname()[1]
    b_port = b_rtp.getsockname()[1]
    r_off = s.cmd("offer", {"command": "offer", "call-id": call, "from-tag": "tagA",
                            "sdp": sdp_a("127.0.0.1", a_port, name="A")})
    r_ans = s.cmd("answer", {"command": "answer", "call-id": call, "from-tag": "tagA", "to-tag": "tagB",
                             "sdp": sdp_a("127.0.0.1", b_port, sess="2222", name="B")})
    po, pa = media_port(reply_sdp(r_off)), media_port(reply_sdp(r_ans))
    s.note("A_rtp", "127.0.0.1:%d" % a_port)
    s.note("B_rtp", "127.0.0.1:%d" % b_port)
    s.note("port_in_offer_reply_sdp", po)
    s.note("port_in_answer_reply_sdp", pa)
    rtp = exchange_rtp(a_rtp, ("127.0.0.1", po), b_rtp, ("127.0.0.1", pa), count=10)
    s._write_json("rtp.json", rtp)
    s.cmd("query", {"command": "query", "call-id": call})
    s.cmd("delete", {"command": "delete", "call-id": call, "from-tag": "tagA"})
    for sk in (a_rtp, a_rtcp, b_rtp, b_rtcp):
        sk.close()


def learning_case(name, flags):
    """Endpoint learning / latching: A moves to a new source port mid-call."""
    s = Scenario(name)
    call = cid(name)
    a_rtp, a_rtcp = free_port_pair("127.0.0.1")
    b_rtp, b_rtcp = free_port_pair("127.0.0.1")
    a2 = udp_sock("127.0.0.1")
    off = {"command": "offer", "call-id": call, "from-tag": "tagA",
           "sdp": sdp_a("127.0.0.1", a_rtp.getsockname()[1], name="A")}
    if flags:
        off["flags"] = flags
    r1 = s.cmd("offer", off)
    r2 = s.cmd("answer", {"command": "answer", "call-id": call, "from-tag": "tagA", "to-tag": "tagB",
                          "sdp": sdp_a("127.0.0.1", b_rtp.getsockname()[1], sess="2222", name="B")})
    to_a_side = ("127.0.0.1", media_port(reply_sdp(r2)))  # where A sends
    to_b_side = ("127.0.0.1", media_port(reply_sdp(r1)))  # where B sends
    socks = {"A": a_rtp, "A_new_port": a2, "B": b_rtp}
    s.note("sockets", {k: "%s:%d" % v.getsockname() for k, v in socks.items()})
    s.note("relay", {"A sends to": to_a_side[1], "B sends to": to_b_side[1]})
    phases = []
    seq = [0]

    def phase(desc, senders):
        sent = {}
        for who, sk, dest in senders:
            for _ in range(5):
                seq[0] += 1
                p = rtp_packet(seq[0], seq[0] * 160, 0x11111111 if who.startswith("A") else 0x22222222,
                               1 if who.startswith("A") else 2)
                sent[p] = who
                sk.sendto(p, dest)
                time.sleep(0.01)
        got = collect(socks)
        phases.append({"phase": desc, "senders": [w for w, _, _ in senders],
                       "result": summarize_got(got, sent)})
        s.note("phases", phases)

    phase("1: A and B send from their SDP ports",
          [("A", a_rtp, to_a_side), ("B", b_rtp, to_b_side)])
    phase("2: A sends from a NEW port (same IP) right away",
          [("A_new_port", a2, to_a_side)])
    phase("3: B sends; where does it go?", [("B", b_rtp, to_b_side)])
    phase("4: A sends from its old SDP port again", [("A", a_rtp, to_a_side)])
    phase("5: B sends", [("B", b_rtp, to_b_side)])
    time.sleep(3.5)
    phase("6: after 3.5 s (learning window over): A sends from the NEW port",
          [("A_new_port", a2, to_a_side)])
    phase("7: B sends", [("B", b_rtp, to_b_side)])
    phase("8: A sends from its OLD SDP port again (endpoint now confirmed on the new port)",
          [("A", a_rtp, to_a_side)])
    phase("9: B sends", [("B", b_rtp, to_b_side)])
    s.cmd("query", {"command": "query", "call-id": call})
    s.cmd("delete", {"command": "delete", "call-id": call})
    for sk in (a_rtp, a_rtcp, b_rtp, b_rtcp, a2):
        sk.close()


def sc_learning():
    learning_case("rtp-endpoint-learning", None)
    learning_case("rtp-endpoint-learning-strict-source", ["strict source"])


def sc_sdp_version():
    name = "reoffer-replace-sdp-version"
    s = Scenario(name)
    call = cid(name)
    A, B = "127.0.0.11", "127.0.0.12"
    res = []
    for label, ver, port, extra in (("initial", "1", 40000, {"replace": ["sdp-version"]}),
                                    ("same-version-same-sdp", "1", 40000, {"replace": ["sdp-version"]}),
                                    ("same-version-port-changed", "1", 40100, {"replace": ["sdp-version"]}),
                                    ("force-increment", "1", 40100,
                                     {"replace": ["force-increment-sdp-version"]}),
                                    ("no-replace-flag", "1", 40200, {})):
        m = {"command": "offer", "call-id": call, "from-tag": "tagA",
             "sdp": sdp_a(A, port, sess="1111", ver=ver, name="A")}
        m.update(extra)
        r = s.cmd(label + "-offer", m)
        r2 = s.cmd(label + "-answer", {"command": "answer", "call-id": call, "from-tag": "tagA",
                                       "to-tag": "tagB",
                                       "sdp": sdp_a(B, 42000, sess="2222", ver="1", name="B")})
        res.append({"step": label, "sent_o": "o=- 1111 %s IN IP4 %s" % (ver, A), "A_port": port,
                    "offer_reply_o": sdp_line(reply_sdp(r), "o=") if reply_sdp(r) else None,
                    "offer_reply_port": media_port(reply_sdp(r)) if reply_sdp(r) else None,
                    "answer_reply_o": sdp_line(reply_sdp(r2), "o=") if reply_sdp(r2) else None})
        s.note("steps", res)
    s.cmd("delete", {"command": "delete", "call-id": call})


def running_isolated():
    """True inside a network namespace whose only interface is loopback."""
    try:
        with open("/proc/net/dev") as f:
            names = [l.split(":")[0].strip() for l in f.readlines()[2:]]
    except OSError:
        return False
    return names == ["lo"]


# answers that belong to a particular offer fixture
ANSWER_TO = {"23-audio-only-answer-video-rejected": "22-poly-video-h264-bfcp-offer"}


def sc_fixtures():
    """Every SDP fixture of tests/data/sdp sent verbatim. Only inside an isolated
    network namespace, since the fixtures carry non-loopback addresses."""
    if not running_isolated():
        sys.stderr.write("  (skipped: needs --isolate, fixtures carry non-loopback addresses)\n")
        return
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "sdp")
    for fn in sorted(os.listdir(root)):
        if not fn.endswith(".sdp"):
            continue
        stem = fn[:-4]
        with open(os.path.join(root, fn), "rb") as f:
            body = f.read()
        s = Scenario("sdp-fixtures/" + stem)
        call = cid("fx-" + stem)
        if "answer" in stem:
            offer = sdp_a("127.0.0.11", 40000, name="A").encode()
            if stem in ANSWER_TO:
                with open(os.path.join(root, ANSWER_TO[stem] + ".sdp"), "rb") as f:
                    offer = f.read()
            s.cmd("offer", {"command": "offer", "call-id": call, "from-tag": "tagA", "sdp": offer})
            s.cmd("answer", {"command": "answer", "call-id": call, "from-tag": "tagA",
                             "to-tag": "tagB", "sdp": body})
        else:
            s.cmd("offer", {"command": "offer", "call-id": call, "from-tag": "tagA", "sdp": body})
        s.cmd("delete", {"command": "delete", "call-id": call})
    oa = os.path.join(root, "offer-answer")
    for fn in sorted(os.listdir(oa)):
        if not fn.endswith(".offer.sdp"):
            continue
        stem = fn[:-len(".offer.sdp")]
        with open(os.path.join(oa, fn), "rb") as f:
            offer = f.read()
        with open(os.path.join(oa, stem + ".answer.sdp"), "rb") as f:
            answer = f.read()
        s = Scenario("sdp-fixtures/offer-answer-" + stem)
        call = cid("fxoa-" + stem)
        s.cmd("offer", {"command": "offer", "call-id": call, "from-tag": "tagA", "sdp": offer})
        s.cmd("answer", {"command": "answer", "call-id": call, "from-tag": "tagA", "to-tag": "tagB",
                         "sdp": answer})
        s.cmd("delete", {"command": "delete", "call-id": call})


ICE_LINES = [
    "a=ice-ufrag:F7gI",
    "a=ice-pwd:x9cml/YzichV2+XlhiMu8g",
    "a=candidate:1 1 UDP 2130706431 127.0.0.11 40000 typ host",
    "a=candidate:1 2 UDP 2130706430 127.0.0.11 40001 typ host",
]


def flag_case(name, offer_extra=None, answer=False, a_extra_media=(), a_extra_session=(),
              b_extra_media=(), a_sdp=None, query=True, origin_addr=None):
    s = Scenario("flags-" + name)
    call = cid("flags-" + name)
    msg = {"command": "offer", "call-id": call, "from-tag": "tagA",
           "sdp": a_sdp or sdp_a("127.0.0.11", 40000, sess="1111", name="A",
                                 extra_media=a_extra_media, extra_session=a_extra_session,
                                 origin_addr=origin_addr)}
    msg.update(offer_extra or {})
    r_off = s.cmd("offer", msg)
    if answer and r_off and r_off["msg"] and r_off["msg"].get("result") == "ok":
        off = reply_sdp(r_off)
        b_media = b_extra_media(off) if callable(b_extra_media) else list(b_extra_media)
        s.cmd("answer", {"command": "answer", "call-id": call, "from-tag": "tagA", "to-tag": "tagB",
                         "sdp": sdp_a("127.0.0.12", 42000, sess="2222", name="B", extra_media=b_media)})
    if query:
        s.cmd("query", {"command": "query", "call-id": call})
    s.cmd("delete", {"command": "delete", "call-id": call, "from-tag": "tagA"})
    return s


def mirror_mux(off_sdp):
    return ["a=rtcp-mux"] if off_sdp and "a=rtcp-mux" in off_sdp else []


def sc_flags():
    flag_case("none", {}, answer=True)
    flag_case("trust-address-symmetric", {"flags": ["trust address", "symmetric"]}, answer=True)
    flag_case("strict-source", {"flags": ["strict source"]}, answer=True)
    flag_case("no-rtcp-attribute", {"flags": ["no rtcp attribute"]}, answer=True)
    flag_case("full-rtcp-attribute", {"flags": ["full rtcp attribute"]}, answer=True)
    flag_case("loop-protect", {"flags": ["loop protect"]}, answer=True)
    flag_case("replace-origin-session-connection", {"replace": ["origin", "session-connection"]},
              answer=True)
    flag_case("replace-origin-distinct-origin-addr", {"replace": ["origin"]},
              origin_addr="127.0.0.99", query=False)
    flag_case("ice-remove", {"ICE": "remove"}, a_extra_media=ICE_LINES, answer=True)
    flag_case("ice-default", {}, a_extra_media=ICE_LINES, answer=True)
    flag_case("ice-force", {"ICE": "force"}, answer=False, query=False)
    for mode in ("offer", "demux", "accept"):
        flag_case("rtcp-mux-" + mode, {"rtcp-mux": [mode]}, a_extra_media=["a=rtcp-mux"],
                  answer=True, b_extra_media=mirror_mux)
    flag_case("rtcp-mux-offer-no-mux-in-sdp", {"rtcp-mux": ["offer"]}, answer=True,
              b_extra_media=mirror_mux)
    flag_case("rtcp-mux-default-with-mux-in-sdp", {}, a_extra_media=["a=rtcp-mux"], answer=True,
              b_extra_media=mirror_mux)
    flag_case("direction-internal-external", {"direction": ["internal", "external"]}, answer=True)
    flag_case("received-from", {"received from": ["IP4", "127.0.0.3"]}, answer=True)
    flag_case("received-from-trust-address", {"received from": ["IP4", "127.0.0.3"],
                                              "flags": ["trust address"]}, answer=False)
    flag_case("sip-source-address", {"received from": ["IP4", "127.0.0.3"],
                                     "flags": ["SIP source address"]}, answer=True)
    flag_case("asymmetric", {"flags": ["asymmetric"]}, answer=True)
    flag_case("port-latching", {"flags": ["port latching"]}, answer=True)
    flag_case("replace-session-name", {"replace": ["session-name"]}, query=False)
    flag_case("replace-sdp-version", {"replace": ["sdp-version"]}, query=False)
    flag_case("replace-username", {"replace": ["username"]}, query=False,
              a_sdp=sdp_a("127.0.0.11", 40000, user="alice"))
    flag_case("media-address", {"media address": "127.0.0.5"}, answer=True)
    flag_case("label", {"label": "caller"}, answer=True)
    flag_case("session-level-connection-only",
              {}, answer=False,
              a_sdp=sdp(["v=0", "o=- 1111 1 IN IP4 127.0.0.11", "s=A", "c=IN IP4 127.0.0.11",
                         "t=0 0", "m=audio 40000 RTP/AVP 0", "a=rtpmap:0 PCMU/8000"]))
    flag_case("media-level-connection-only",
              {}, answer=False,
              a_sdp=sdp(["v=0", "o=- 1111 1 IN IP4 127.0.0.11", "s=A", "t=0 0",
                         "m=audio 40000 RTP/AVP 0", "c=IN IP4 127.0.0.11",
                         "a=rtpmap:0 PCMU/8000", "a=x-custom:keep-me", "a=ptime:20"]))
    flag_case("two-media-streams",
              {}, answer=False,
              a_sdp=sdp(["v=0", "o=- 1111 1 IN IP4 127.0.0.11", "s=A", "c=IN IP4 127.0.0.11",
                         "t=0 0", "m=audio 40000 RTP/AVP 0", "a=rtpmap:0 PCMU/8000",
                         "m=video 40002 RTP/AVP 96", "a=rtpmap:96 H264/90000", "a=recvonly"]))
    flag_case("existing-rtcp-attribute",
              {}, answer=False,
              a_extra_media=["a=rtcp:40001 IN IP4 127.0.0.11"])


RETRANS = []  # [cookie of the retransmitted offer, monotonic time it was first sent]


def sc_errors():
    s = Scenario("errors")
    s.cmd("unknown-command", {"command": "frobnicate", "call-id": cid("err-unknown")})
    s.cmd("no-command-key", {"call-id": cid("err-nocommand")})
    s.cmd("offer-missing-call-id", {"command": "offer", "from-tag": "tagA",
                                    "sdp": sdp_a("127.0.0.11", 40000)})
    s.cmd("offer-missing-from-tag", {"command": "offer", "call-id": cid("err-nofromtag"),
                                     "sdp": sdp_a("127.0.0.11", 40000)})
    s.cmd("answer-unknown-call", {"command": "answer", "call-id": cid("err-nosuchcall"),
                                  "from-tag": "tagA", "to-tag": "tagB",
                                  "sdp": sdp_a("127.0.0.12", 42000)})
    s.cmd("delete-unknown-call", {"command": "delete", "call-id": cid("err-nosuchcall"),
                                  "from-tag": "tagA"})
    s.cmd("query-unknown-call", {"command": "query", "call-id": cid("err-nosuchcall")})
    s.cmd("offer-without-sdp", {"command": "offer", "call-id": cid("err-nosdp"), "from-tag": "tagA"})
    s.cmd("offer-sdp-no-m-line", {"command": "offer", "call-id": cid("err-nom"), "from-tag": "tagA",
                                  "sdp": sdp(["v=0", "o=- 1 1 IN IP4 127.0.0.11", "s=A",
                                              "c=IN IP4 127.0.0.11", "t=0 0"])})
    s.cmd("offer-sdp-garbage", {"command": "offer", "call-id": cid("err-garbage"), "from-tag": "tagA",
                                "sdp": "this is not an SDP\r\n"})
    s.cmd("offer-sdp-bad-port", {"command": "offer", "call-id": cid("err-badport"), "from-tag": "tagA",
                                 "sdp": sdp(["v=0", "o=- 1 1 IN IP4 127.0.0.11", "s=A",
                                             "c=IN IP4 127.0.0.11", "t=0 0",
                                             "m=audio notaport RTP/AVP 0"])})
    s.cmd("offer-sdp-bad-connection", {"command": "offer", "call-id": cid("err-badc"), "from-tag": "tagA",
                                       "sdp": sdp(["v=0", "o=- 1 1 IN IP4 127.0.0.11", "s=A",
                                                   "c=IN IP4 not.an.address", "t=0 0",
                                                   "m=audio 40000 RTP/AVP 0"])})
    s.cmd("offer-sdp-lf-only", {"command": "offer", "call-id": cid("err-lf"), "from-tag": "tagA",
                                "sdp": sdp_a("127.0.0.11", 40000).replace("\r\n", "\n")})
    s.cmd("offer-sdp-empty", {"command": "offer", "call-id": cid("err-empty"), "from-tag": "tagA",
                              "sdp": ""})
    s.cmd("query-after-offer-sdp-empty", {"command": "query", "call-id": cid("err-empty")})
    s.cmd("delete-after-offer-sdp-empty", {"command": "delete", "call-id": cid("err-empty")})
    s.cmd("offer-call-id-integer", {"command": "offer", "call-id": 12345, "from-tag": "tagA",
                                    "sdp": sdp_a("127.0.0.11", 40000)})
    c = next_cookie().encode()
    s.raw("truncated-bencode", c + b" d7:command4:pin")
    c = next_cookie().encode()
    s.raw("truncated-bencode-dict-unterminated", c + b" d7:command4:ping")
    c = next_cookie().encode()
    s.raw("non-dictionary-list", c + b" l7:command4:pinge")
    c = next_cookie().encode()
    s.raw("non-dictionary-integer", c + b" i42e")
    c = next_cookie().encode()
    s.raw("trailing-garbage", c + b" d7:command4:pingeXYZ")
    s.raw("no-cookie", b"d7:command4:pinge")
    s.raw("empty-datagram", b"")
    c = next_cookie().encode()
    s.raw("cookie-only", c + b" ")
    c = next_cookie().encode()
    s.raw("json-body", c + b' {"command":"ping"}')
    c = next_cookie().encode()
    s.raw("unsorted-keys-ping", c + b" d7:command4:ping3:zzzi1e3:aaai2ee")

    # Retransmission: same cookie, same bytes
    call = cid("err-retrans")
    a_sdp = sdp_a("127.0.0.11", 40000)
    cookie = next_cookie()
    RETRANS[:] = [cookie, time.monotonic()]
    msg = {"command": "offer", "call-id": call, "from-tag": "tagA", "sdp": a_sdp}
    r1 = s.cmd("offer-first", msg, cookie=cookie)
    r2 = s.cmd("offer-retransmit-same-cookie", msg, cookie=cookie)
    # Same cookie, different content (cache keyed by cookie only?)
    r3 = s.cmd("ping-reusing-offer-cookie", {"command": "ping"}, cookie=cookie)
    # Same offer, new cookie (a real re-offer)
    r4 = s.cmd("offer-same-body-new-cookie", msg)
    body = lambda r: r["raw"].split(b" ", 1)[1] if r else None
    s.note("retransmission", {
        "first_and_retransmit_raw_identical": bool(r1 and r2 and r1["raw"] == r2["raw"]),
        "ping_with_reused_cookie_got_cached_offer_reply": bool(r1 and r3 and r1["raw"] == r3["raw"]),
        "new_cookie_same_offer_identical_reply_body": bool(r1 and r4 and body(r1) == body(r4)),
        "ports": [media_port(reply_sdp(r)) if reply_sdp(r) else None for r in (r1, r2, r3, r4)],
        "o_lines": [sdp_line(reply_sdp(r), "o=") if reply_sdp(r) else None for r in (r1, r2, r3, r4)],
    })
    s.cmd("delete-twice-1", {"command": "delete", "call-id": call, "from-tag": "tagA"})
    s.cmd("delete-twice-2", {"command": "delete", "call-id": call, "from-tag": "tagA"})
    s.cmd("delete-unknown-call-fatal", {"command": "delete", "call-id": cid("err-nosuchcall2"),
                                        "flags": ["fatal"]})


def sc_reoffer():
    name = "reoffer-hold-resume"
    s = Scenario(name)
    call = cid(name)
    A, B = "127.0.0.11", "127.0.0.12"
    steps = []

    def o(label, ver, direction, bdir):
        r1 = s.cmd(label + "-offer", {"command": "offer", "call-id": call, "from-tag": "tagA",
                                      "sdp": sdp_a(A, 40000, sess="1111", ver=ver, name="A",
                                                   direction=direction)})
        r2 = s.cmd(label + "-answer", {"command": "answer", "call-id": call, "from-tag": "tagA",
                                       "to-tag": "tagB",
                                       "sdp": sdp_a(B, 42000, sess="2222", ver=ver, name="B",
                                                    direction=bdir)})
        steps.append({
            "step": label, "A_o_version": ver, "A_direction": direction, "B_direction": bdir,
            "offer_reply_port": media_port(reply_sdp(r1)) if reply_sdp(r1) else None,
            "answer_reply_port": media_port(reply_sdp(r2)) if reply_sdp(r2) else None,
            "offer_reply_o": sdp_line(reply_sdp(r1), "o=") if reply_sdp(r1) else None,
            "answer_reply_o": sdp_line(reply_sdp(r2), "o=") if reply_sdp(r2) else None,
            "offer_reply_direction": [l for l in sdp_lines(reply_sdp(r1)) or []
                                      if l in ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive")],
            "answer_reply_direction": [l for l in sdp_lines(reply_sdp(r2)) or []
                                       if l in ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive")],
        })
        s.note("steps", steps)

    o("initial", "1", "sendrecv", "sendrecv")
    o("hold", "2", "sendonly", "recvonly")
    o("resume", "3", "sendrecv", "sendrecv")
    o("same-version-again", "3", "sendrecv", "sendrecv")
    o("hold-inactive", "4", "inactive", "inactive")
    # re-offer where A changes its port
    r = s.cmd("a-port-change-offer", {"command": "offer", "call-id": call, "from-tag": "tagA",
                                      "sdp": sdp_a(A, 40100, sess="1111", ver="5", name="A")})
    s.note("a_port_change_offer_reply_port", media_port(reply_sdp(r)) if reply_sdp(r) else None)
    # re-INVITE from B's side (B is now offerer)
    r1 = s.cmd("reverse-offer-from-B", {"command": "offer", "call-id": call, "from-tag": "tagB",
                                        "to-tag": "tagA",
                                        "sdp": sdp_a(B, 42000, sess="2222", ver="6", name="B",
                                                     direction="sendonly")})
    r2 = s.cmd("reverse-answer-from-A", {"command": "answer", "call-id": call, "from-tag": "tagB",
                                         "to-tag": "tagA",
                                         "sdp": sdp_a(A, 40100, sess="1111", ver="6", name="A",
                                                      direction="recvonly")})
    s.note("reverse", {"offer_reply_port(to A)": media_port(reply_sdp(r1)) if reply_sdp(r1) else None,
                       "answer_reply_port(to B)": media_port(reply_sdp(r2)) if reply_sdp(r2) else None})
    s.cmd("query", {"command": "query", "call-id": call})
    s.cmd("delete", {"command": "delete", "call-id": call, "from-tag": "tagA"})


def setup_call(s, call, with_rtp=False):
    a_rtp, a_rtcp = free_port_pair("127.0.0.1")
    b_rtp, b_rtcp = free_port_pair("127.0.0.1")
    r1 = s.cmd("offer", {"command": "offer", "call-id": call, "from-tag": "tagA",
                         "sdp": sdp_a("127.0.0.1", a_rtp.getsockname()[1], name="A")})
    r2 = s.cmd("answer", {"command": "answer", "call-id": call, "from-tag": "tagA", "to-tag": "tagB",
                          "sdp": sdp_a("127.0.0.1", b_rtp.getsockname()[1], sess="2222", name="B")})
    if with_rtp:
        rtp = exchange_rtp(a_rtp, ("127.0.0.1", media_port(reply_sdp(r2))),
                           b_rtp, ("127.0.0.1", media_port(reply_sdp(r1))), count=10)
        s._write_json("rtp.json", rtp)
    for sk in (a_rtp, a_rtcp, b_rtp, b_rtcp):
        sk.close()


def sc_delete(delete_delay_wait):
    s = Scenario("delete-from-tag")
    call = cid("delete-from-tag")
    setup_call(s, call, with_rtp=True)
    s.cmd("delete", {"command": "delete", "call-id": call, "from-tag": "tagA"})
    s.cmd("query-after-delete", {"command": "query", "call-id": call})
    s.cmd("list-after-delete", {"command": "list"})
    s.cmd("list-limit-3", {"command": "list", "limit": 3})
    s.cmd("list-limit-100", {"command": "list", "limit": 100})
    s.cmd("delete-again", {"command": "delete", "call-id": call, "from-tag": "tagA"})
    s1 = s

    s = Scenario("delete-to-tag")
    call2 = cid("delete-to-tag")
    setup_call(s, call2, with_rtp=True)
    s.cmd("delete-to-tag-only", {"command": "delete", "call-id": call2, "to-tag": "tagB"})
    s.cmd("query-after-delete", {"command": "query", "call-id": call2})

    s = Scenario("delete-from-and-to-tag")
    call3 = cid("delete-from-and-to-tag")
    setup_call(s, call3)
    s.cmd("delete", {"command": "delete", "call-id": call3, "from-tag": "tagA", "to-tag": "tagB"})
    s.cmd("query-after-delete", {"command": "query", "call-id": call3})

    s = Scenario("delete-call-id-only")
    call4 = cid("delete-call-id-only")
    setup_call(s, call4)
    s.cmd("delete", {"command": "delete", "call-id": call4})
    s.cmd("query-after-delete", {"command": "query", "call-id": call4})

    s = Scenario("delete-unknown-tag")
    call5 = cid("delete-unknown-tag")
    setup_call(s, call5)
    s.cmd("delete-from-tag-unknown", {"command": "delete", "call-id": call5, "from-tag": "nosuchtag"})
    s.cmd("query-after", {"command": "query", "call-id": call5})
    s.cmd("delete", {"command": "delete", "call-id": call5})

    s = Scenario("delete-offer-only")
    call6 = cid("delete-offer-only")
    s.cmd("offer", {"command": "offer", "call-id": call6, "from-tag": "tagA",
                    "sdp": sdp_a("127.0.0.11", 40000)})
    s.cmd("delete", {"command": "delete", "call-id": call6, "from-tag": "tagA"})
    s.cmd("query-after-delete", {"command": "query", "call-id": call6})

    s = Scenario("delete-delay")
    s.note("waited_s_before_queries", delete_delay_wait)
    if delete_delay_wait:
        time.sleep(delete_delay_wait)
        for c in (call, call2, call3, call4):
            s.cmd("query-" + c, {"command": "query", "call-id": c})
        s.cmd("list", {"command": "list"})
        s.cmd("statistics", {"command": "statistics"})
        if RETRANS:
            # is the reply cache still answering for the offer cookie of errors/?
            s.note("ping_reusing_offer_cookie_seconds_after_first_use",
                   round(time.monotonic() - RETRANS[1], 1))
            s.cmd("ping-reusing-old-offer-cookie", {"command": "ping"}, cookie=RETRANS[0])


# --------------------------------------------------------------------------

RTPENGINE_CMD = ["rtpengine", "--config-file=none", "--table=-1", "--interface=127.0.0.1",
                 "--listen-ng=127.0.0.1:2223", "--port-min=30000", "--port-max=30999",
                 "--foreground", "--log-stderr"]


def main():
    global OUT_ROOT, NG_ADDR, RUN
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(here, "..", "data", "ng"))
    ap.add_argument("--ng", default="127.0.0.1:2223")
    ap.add_argument("--spawn", action="store_true", help="start rtpengine, record, stop it")
    ap.add_argument("--delete-delay-wait", type=float, default=32.0,
                    help="seconds to wait before the final queries of deleted calls (0: skip)")
    ap.add_argument("--only", nargs="*", help="run only these scenario groups")
    ap.add_argument("--isolate", action="store_true",
                    help="re-run inside a new network namespace with only loopback (unshare -n, "
                         "needs root); required for the sdp-fixtures group")
    args = ap.parse_args()
    if args.isolate and not running_isolated():
        argv = [a for a in sys.argv[1:] if a != "--isolate"]
        os.execvp("unshare", ["unshare", "-n", "--", "sh", "-c", 'ip link set lo up && exec "$@"',
                              "sh", sys.executable, os.path.abspath(__file__)] + argv)
    OUT_ROOT = os.path.abspath(args.out)
    host, port = args.ng.rsplit(":", 1)
    if not host.startswith("127."):
        sys.exit("refusing to talk to a non-loopback address")
    NG_ADDR = (host, int(port))
    random.seed(1)
    os.makedirs(OUT_ROOT, exist_ok=True)

    proc = None
    logf = None
    full_log = os.path.join("/tmp", "ngref-rtpengine-stderr.log")
    if args.spawn:
        logf = open(full_log, "wb")
        proc = subprocess.Popen(RTPENGINE_CMD, stdout=logf, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        ok = False
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.settimeout(0.3)
        while time.time() < deadline and not ok:
            try:
                probe.sendto(b"probe d7:command4:pinge", NG_ADDR)
                ok = probe.recvfrom(65535)[0].startswith(b"probe ")
            except OSError:
                time.sleep(0.2)
        probe.close()
        if not ok:
            proc.terminate()
            sys.exit("rtpengine did not come up")
    else:
        RUN = "-%d" % int(time.time())

    groups = [
        ("ping", sc_ping),
        ("basic", sc_basic_call),
        ("basic2", sc_basic_call_distinct_addresses),
        ("wrongdir", sc_wrong_direction),
        ("flags", sc_flags),
        ("errors", sc_errors),
        ("reoffer", sc_reoffer),
        ("sdpversion", sc_sdp_version),
        ("learning", sc_learning),
        ("fixtures", sc_fixtures),
        ("delete", lambda: sc_delete(args.delete_delay_wait)),
    ]
    try:
        for gname, fn in groups:
            if args.only and gname not in args.only:
                continue
            sys.stderr.write("== %s\n" % gname)
            fn()
    finally:
        if proc:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            logf.close()
            # keep only what is not INFO (warnings, notices, errors) next to the recordings
            with open(full_log, "rb") as f, \
                    open(os.path.join(OUT_ROOT, "rtpengine-warnings.log"), "wb") as out:
                for line in f:
                    if b" INFO: " not in line:
                        out.write(line)


if __name__ == "__main__":
    main()
