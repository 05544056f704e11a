#!/usr/bin/env python3
"""A WebRTC peer bridged to a plain RTP phone through an NG relay.

A is an aiortc RTCPeerConnection (ICE, DTLS-SRTP, rtcp-mux: what a browser
speaks) sending a 440 Hz tone; B is a plain UDP socket speaking RTP/AVP
PCMU. The offer goes through the relay's NG port with
`transport-protocol: RTP/AVP` and `ICE: remove` (what a SIP proxy asks for
toward a SIP phone), B's answer back; the relay must then terminate ICE and
DTLS-SRTP toward A and relay plain RTP to and from B. Prints one JSON
object:

    {"connected": bool, "b_received": n, "a_received": n, "b_sent": n,
     "to_b_sdp": "...", "to_a_sdp": "...", "error": "..."}

With --reverse the plain side offers instead, with `transport-protocol:
UDP/TLS/RTP/SAVPF` and `ICE: force`, and the WebRTC peer answers (the relay
is then its DTLS server or client as its `a=setup` says).

Usage: aiortc_call.py --ng 127.0.0.1:PORT [--call-id ID] [--seconds S] [--reverse]
Needs `aiortc`. Traffic stays on 127.0.0.1.
"""

import argparse
import asyncio
import fractions
import json
import math
import os
import socket
import struct

import aioice.ice
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack
from av import AudioFrame

from aioice_call import ng_request, ng_sdp_step


class Tone(AudioStreamTrack):
    """20 ms frames of a 440 Hz tone, 8 kHz mono."""

    def __init__(self):
        super().__init__()
        self.n = 0

    async def recv(self):
        await asyncio.sleep(0.02)
        samples = [int(8000 * math.sin(2 * math.pi * 440 * (self.n * 160 + i) / 8000)) for i in range(160)]
        frame = AudioFrame(format="s16", layout="mono", samples=160)
        frame.planes[0].update(struct.pack("<160h", *samples))
        frame.sample_rate = 8000
        frame.pts = self.n * 160
        frame.time_base = fractions.Fraction(1, 8000)
        self.n += 1
        return frame


def counting_peer(counts, key, connected):
    """A peer connection sending a Tone that counts the frames it receives
    in counts[key] and sets `connected` once connected."""
    pc = RTCPeerConnection()

    @pc.on("track")
    def on_track(track):
        async def pull():
            while True:
                try:
                    await track.recv()
                except Exception:
                    return
                counts[key] += 1

        asyncio.ensure_future(pull())

    @pc.on("connectionstatechange")
    def on_state():
        if pc.connectionState == "connected":
            connected.set()

    pc.addTrack(Tone())
    return pc


def plain_sdp(port):
    return (
        "v=0\r\no=- 2 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=rtcp-mux\r\na=sendrecv\r\n"
    )


def m_port(sdp):
    for line in sdp.splitlines():
        if line.startswith("m=audio "):
            return int(line.split()[1])
    raise ValueError("no m=audio line")


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ng", required=True)
    ap.add_argument("--call-id", default=f"aiortc-{os.getpid()}")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument(
        "--reverse",
        action="store_true",
        help="the plain side offers (transport-protocol UDP/TLS/RTP/SAVPF, ICE force)",
    )
    args = ap.parse_args()
    host, port = args.ng.rsplit(":", 1)
    ng = (host, int(port))
    # Loopback only: aioice leaves 127.0.0.1 out of its host candidates.
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    out = {"connected": False, "b_received": 0, "a_received": 0, "b_sent": 0}
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b.bind(("127.0.0.1", 0))
    b.setblocking(False)
    received = asyncio.Event()
    counts = {"a": 0}
    pc = counting_peer(counts, "a", received)
    try:
        if args.reverse:
            # B offers plain RTP toward the WebRTC peer, which answers.
            offer = ng_sdp_step(
                ng,
                {
                    "command": "offer",
                    "call-id": args.call_id,
                    "from-tag": "B",
                    "sdp": plain_sdp(b.getsockname()[1]),
                    "transport-protocol": "UDP/TLS/RTP/SAVPF",
                    "ICE": "force",
                },
                "w1",
                out,
                "to_a_sdp",
            )
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            answer = ng_sdp_step(
                ng,
                {
                    "command": "answer",
                    "call-id": args.call_id,
                    "from-tag": "B",
                    "to-tag": "A",
                    "sdp": pc.localDescription.sdp,
                },
                "w2",
                out,
                "to_b_sdp",
            )
            relay_b = ("127.0.0.1", m_port(answer["sdp"]))
        else:
            await pc.setLocalDescription(await pc.createOffer())
            offer = ng_sdp_step(
                ng,
                {
                    "command": "offer",
                    "call-id": args.call_id,
                    "from-tag": "A",
                    "sdp": pc.localDescription.sdp,
                    "transport-protocol": "RTP/AVP",
                    "ICE": "remove",
                },
                "w1",
                out,
                "to_b_sdp",
            )
            relay_b = ("127.0.0.1", m_port(offer["sdp"]))
            answer = ng_sdp_step(
                ng,
                {
                    "command": "answer",
                    "call-id": args.call_id,
                    "from-tag": "A",
                    "to-tag": "B",
                    "sdp": plain_sdp(b.getsockname()[1]),
                },
                "w2",
                out,
                "to_a_sdp",
            )
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        await asyncio.wait_for(received.wait(), 15)
        out["connected"] = True
        # B sends PCMU each 20 ms and counts what A's tone brings it.
        loop = asyncio.get_running_loop()
        end = loop.time() + args.seconds
        seq = 0
        while loop.time() < end:
            pkt = struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 0xB0B) + bytes([0xFF]) * 160
            b.sendto(pkt, relay_b)
            out["b_sent"] += 1
            seq += 1
            while True:
                try:
                    data = b.recv(2048)
                except BlockingIOError:
                    break
                # RTP (not RTCP, RFC 5761 §4) in the clear: version 2.
                if len(data) >= 12 and data[0] >> 6 == 2 and not 192 <= data[1] <= 223:
                    out["b_received"] += 1
            await asyncio.sleep(0.02)
        out["a_received"] = counts["a"]
        ng_request(ng, {"command": "delete", "call-id": args.call_id}, "w3")
    except Exception as e:  # reported, not raised: the test prints it
        out["error"] = f"{type(e).__name__}: {e}"
    finally:
        await pc.close()
        b.close()
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
