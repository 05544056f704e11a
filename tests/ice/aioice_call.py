#!/usr/bin/env python3
"""One call through an NG relay between two independent ICE agents (aioice).

A (controlling, the offerer) and B (controlled, the answerer) are aioice
agents on 127.0.0.1. The script sends A's offer and B's answer through the
relay's NG port, gives each agent the credentials and candidates the relay
handed it, runs the connectivity checks of both, then sends RTP each way
over the selected pairs and counts what arrives. It prints one JSON object:

    {"connected": bool, "a_to_b": n, "b_to_a": n, "sent": n,
     "offer_sdp": "...", "answer_sdp": "...", "error": "..."}

With --silence SECS, A then stops answering STUN requests (the relay's
consent checks, RFC 7675) while B goes on sending RTP every 20 ms for SECS
seconds; A counts what still arrives: "silent_arrivals" (packets), and
"last_arrival_s", the time of the last one after A fell silent (a relay
that honours consent stops sending about 30 s after the last response).

Usage: aioice_call.py --ng 127.0.0.1:PORT [--call-id ID] [--packets N] [--silence SECS]
Needs the `aioice` package. Traffic stays on 127.0.0.1.
"""

import argparse
import asyncio
import json
import os
import socket
import struct
import sys

import aioice
import aioice.ice

# The NG codec of the Kamailio rig's client (bencode over UDP).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kamailio"))
from ng import bdecode, bencode  # noqa: E402


def ng_request(addr, msg, cookie):
    # Cookies must be unique per daemon: it answers a cookie it has seen
    # from its reply cache (as rtpengine does).
    cookie = f"{os.getpid()}_{cookie}"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    s.sendto(cookie.encode() + b" " + bencode(msg), addr)
    data = s.recv(65536)
    s.close()
    return bdecode(data[len(cookie) + 1 :])[0]


class NgFailed(Exception):
    """An NG command whose reply was not `result: ok`."""


def ng_sdp_step(addr, msg, cookie, out, sdp_key):
    """Sends an NG offer or answer, keeps the SDP of the reply in
    out[sdp_key] (the test reads it) and returns the reply; raises NgFailed
    when the relay did not accept the command."""
    reply = ng_request(addr, msg, cookie)
    out[sdp_key] = reply.get("sdp", "")
    if reply.get("result") != "ok":
        raise NgFailed(f"{msg['command']}: {reply}")
    return reply


def agent_sdp(conn, sess_id):
    port = conn.local_candidates[0].port
    lines = [
        "v=0",
        f"o=- {sess_id} 1 IN IP4 127.0.0.1",
        "s=-",
        "c=IN IP4 127.0.0.1",
        "t=0 0",
        f"m=audio {port} RTP/AVP 0",
        "a=rtpmap:0 PCMU/8000",
        "a=rtcp-mux",
        f"a=ice-ufrag:{conn.local_username}",
        f"a=ice-pwd:{conn.local_password}",
    ]
    lines += [f"a=candidate:{c.to_sdp()}" for c in conn.local_candidates]
    lines += ["a=end-of-candidates", "a=sendrecv"]
    return "\r\n".join(lines) + "\r\n"


async def learn(conn, sdp):
    """Gives `conn` the relay's ICE credentials and candidates from `sdp`."""
    for line in sdp.splitlines():
        if line.startswith("a=ice-ufrag:"):
            conn.remote_username = line.split(":", 1)[1]
        elif line.startswith("a=ice-pwd:"):
            conn.remote_password = line.split(":", 1)[1]
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            await conn.add_remote_candidate(aioice.Candidate.from_sdp(line[len("a=candidate:") :]))
    await conn.add_remote_candidate(None)


def rtp(seq, ssrc):
    return struct.pack("!BBHII", 0x80, 0, seq, seq * 160, ssrc) + bytes([seq & 0xFF]) * 160


async def count(conn, n, ssrc, secs):
    got = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + secs
    while got < n and loop.time() < end:
        try:
            data, _ = await asyncio.wait_for(conn.recvfrom(), end - loop.time())
        except asyncio.TimeoutError:
            break
        if len(data) >= 12 and struct.unpack("!I", data[8:12])[0] == ssrc:
            got += 1
    return got


async def silence(a, b, secs):
    """A answers no STUN request from now on; B sends RTP for `secs`."""
    a.request_received = lambda *args: None
    loop = asyncio.get_running_loop()
    start = loop.time()
    arrivals, last = 0, None

    async def send():
        seq = 1000
        while loop.time() - start < secs:
            await b.sendto(rtp(seq & 0xFFFF, 0xB), 1)
            seq += 1
            await asyncio.sleep(0.02)

    async def receive():
        nonlocal arrivals, last
        while loop.time() - start < secs + 1:
            try:
                data, _ = await asyncio.wait_for(a.recvfrom(), 0.5)
            except asyncio.TimeoutError:
                continue
            if len(data) >= 12 and struct.unpack("!I", data[8:12])[0] == 0xB:
                arrivals += 1
                last = loop.time() - start

    await asyncio.gather(send(), receive())
    return arrivals, last


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ng", required=True)
    ap.add_argument("--call-id", default=f"aioice-{os.getpid()}")
    ap.add_argument("--packets", type=int, default=50)
    ap.add_argument("--silence", type=float, default=0)
    args = ap.parse_args()
    host, port = args.ng.rsplit(":", 1)
    ng = (host, int(port))
    # Loopback only: aioice leaves 127.0.0.1 out of its host candidates.
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    out = {"connected": False, "a_to_b": 0, "b_to_a": 0, "sent": args.packets}
    a = aioice.Connection(ice_controlling=True, components=1, use_ipv6=False)
    b = aioice.Connection(ice_controlling=False, components=1, use_ipv6=False)
    try:
        await a.gather_candidates()
        await b.gather_candidates()
        offer = ng_sdp_step(
            ng,
            {"command": "offer", "call-id": args.call_id, "from-tag": "A", "sdp": agent_sdp(a, 1)},
            "c1",
            out,
            "offer_sdp",
        )
        await learn(b, offer["sdp"])
        answer = ng_sdp_step(
            ng,
            {
                "command": "answer",
                "call-id": args.call_id,
                "from-tag": "A",
                "to-tag": "B",
                "sdp": agent_sdp(b, 2),
            },
            "c2",
            out,
            "answer_sdp",
        )
        await learn(a, answer["sdp"])
        await asyncio.wait_for(asyncio.gather(a.connect(), b.connect()), 15)
        out["connected"] = True
        for i in range(args.packets):
            await a.sendto(rtp(i, 0xA), 1)
            await b.sendto(rtp(i, 0xB), 1)
            await asyncio.sleep(0.005)
        out["a_to_b"], out["b_to_a"] = await asyncio.gather(
            count(b, args.packets, 0xA, 3), count(a, args.packets, 0xB, 3)
        )
        if args.silence > 0:
            out["silent_arrivals"], out["last_arrival_s"] = await silence(a, b, args.silence)
        ng_request(ng, {"command": "delete", "call-id": args.call_id}, "c3")
    except Exception as e:  # reported, not raised: the test prints it
        out["error"] = f"{type(e).__name__}: {e}"
    finally:
        await a.close()
        await b.close()
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
