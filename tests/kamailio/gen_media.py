#!/usr/bin/env python3
"""Generate the test media for the SIPp scenarios (stdlib only, nothing downloaded).

    gen_media.py OUTDIR [SECONDS]

writes
  OUTDIR/tone.ulaw  raw G.711 u-law (PCMU), 8 kHz mono, a 440 Hz tone: SIPp's
                    rtp_stream="tone.ulaw,-1,0" packetises it (160 bytes / 20 ms, PT 0)
  OUTDIR/tone.pcap  the same audio as RTP/UDP/IPv4 packets in a pcap (Ethernet link
                    type), for SIPp's play_pcap_audio (an alternative to rtp_stream)
"""
import math
import os
import struct
import sys

RATE = 8000
PTIME_MS = 20
SAMPLES = RATE * PTIME_MS // 1000  # 160


def linear_to_ulaw(sample):
    """G.711 u-law encoder (ITU-T G.711, 14-bit magnitude with bias 0x84)."""
    BIAS, CLIP = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    if sample < 0:
        sample = -sample
    sample = min(sample, CLIP) + BIAS
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not (sample & mask):
        exponent -= 1
        mask >>= 1
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def tone(seconds, freq=440.0, amp=8000):
    n = int(RATE * seconds)
    return bytes(linear_to_ulaw(int(amp * math.sin(2 * math.pi * freq * i / RATE)))
                 for i in range(n))


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def write_pcap(path, audio, src=("127.0.0.1", 4000), dst=("127.0.0.1", 4002)):
    ssrc, seq, ts = 0x4D52454C, 1000, 160000  # "MREL"
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]  # LINKTYPE_ETHERNET
    t_us = 0
    for off in range(0, len(audio) - SAMPLES + 1, SAMPLES):
        payload = audio[off:off + SAMPLES]
        rtp = struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload
        udp_len = 8 + len(rtp)
        udp = struct.pack("!HHHH", src[1], dst[1], udp_len, 0) + rtp
        ip_src = bytes(int(x) for x in src[0].split("."))
        ip_dst = bytes(int(x) for x in dst[0].split("."))
        iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0xB8, 20 + udp_len, seq & 0xFFFF, 0x4000,
                          64, 17, 0, ip_src, ip_dst)
        iph = iph[:10] + struct.pack("!H", checksum(iph)) + iph[12:]
        frame = b"\0" * 12 + b"\x08\x00" + iph + udp
        out.append(struct.pack("<IIII", t_us // 1000000, t_us % 1000000, len(frame), len(frame)))
        out.append(frame)
        seq += 1
        ts += SAMPLES
        t_us += PTIME_MS * 1000
    with open(path, "wb") as f:
        f.write(b"".join(out))


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else "."
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    os.makedirs(outdir, exist_ok=True)
    audio = tone(seconds)
    with open(os.path.join(outdir, "tone.ulaw"), "wb") as f:
        f.write(audio)
    write_pcap(os.path.join(outdir, "tone.pcap"), audio)
    print("wrote %s/tone.ulaw (%d bytes) and tone.pcap (%d packets)"
          % (outdir, len(audio), len(audio) // SAMPLES))


if __name__ == "__main__":
    main()
