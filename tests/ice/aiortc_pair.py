#!/usr/bin/env python3
"""Two WebRTC peers through an NG relay with no flags.

A and B are aiortc RTCPeerConnections (ICE, DTLS-SRTP, rtcp-mux: what
browsers speak), each sending a 440 Hz tone. A's offer goes through the
relay's NG port as it is, B's answer back; by default the relay terminates
ICE and DTLS-SRTP toward each peer and re-encrypts the media between them.
Prints one JSON object:

    {"connected": bool, "a_received": n, "b_received": n,
     "to_b_sdp": "...", "to_a_sdp": "...", "error": "..."}

Usage: aiortc_pair.py --ng 127.0.0.1:PORT [--call-id ID] [--seconds S]
Needs `aiortc`. Traffic stays on 127.0.0.1.
"""

import argparse
import asyncio
import json
import os

import aioice.ice
from aiortc import RTCSessionDescription

from aioice_call import ng_request, ng_sdp_step
from aiortc_call import counting_peer


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ng", required=True)
    ap.add_argument("--call-id", default=f"aiortc-pair-{os.getpid()}")
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    host, port = args.ng.rsplit(":", 1)
    ng = (host, int(port))
    # Loopback only: aioice leaves 127.0.0.1 out of its host candidates.
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    out = {"connected": False, "a_received": 0, "b_received": 0}
    counts = {"a": 0, "b": 0}
    a_up, b_up = asyncio.Event(), asyncio.Event()
    a = counting_peer(counts, "a", a_up)
    b = counting_peer(counts, "b", b_up)
    try:
        await a.setLocalDescription(await a.createOffer())
        offer = ng_sdp_step(
            ng,
            {"command": "offer", "call-id": args.call_id, "from-tag": "A", "sdp": a.localDescription.sdp},
            "p1",
            out,
            "to_b_sdp",
        )
        await b.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
        await b.setLocalDescription(await b.createAnswer())
        answer = ng_sdp_step(
            ng,
            {
                "command": "answer",
                "call-id": args.call_id,
                "from-tag": "A",
                "to-tag": "B",
                "sdp": b.localDescription.sdp,
            },
            "p2",
            out,
            "to_a_sdp",
        )
        await a.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        await asyncio.wait_for(asyncio.gather(a_up.wait(), b_up.wait()), 15)
        out["connected"] = True
        await asyncio.sleep(args.seconds)
        out["a_received"], out["b_received"] = counts["a"], counts["b"]
        ng_request(ng, {"command": "delete", "call-id": args.call_id}, "p3")
    except Exception as e:  # reported, not raised: the test prints it
        out["error"] = f"{type(e).__name__}: {e}"
    finally:
        await a.close()
        await b.close()
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
