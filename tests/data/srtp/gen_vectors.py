#!/usr/bin/env python3
"""Generates tests/data/srtp/vectors.txt: SRTP/SRTCP known-answer vectors
from an independent implementation, libsrtp2, through pylibsrtp, and the
RFC test vectors of the suites (RFC 3711 B.1-B.3, RFC 6188 §7, RFC 7714
§16-17).

    python3 -m venv /tmp/srtpvenv
    /tmp/srtpvenv/bin/pip install pylibsrtp==1.0.0 cryptography
    /tmp/srtpvenv/bin/python tests/data/srtp/gen_vectors.py > tests/data/srtp/vectors.txt

pylibsrtp 1.0.0 bundles libsrtp 2.7.0 (built with OpenSSL, so with
AES-192/256 counter mode and AES-GCM). Its Python API has no MKI, no
per-policy security services and only the AES-128 and GCM profiles, so
the MKI cases, the unencrypted (E=0) SRTCP cases and the AES-256 and
NULL suites call the same bundled libsrtp directly (cffi ABI
mode, `srtp_protect_mki` and friends, the `srtp_crypto_policy_set_*`
functions). libsrtp 2 has no f8: F8_128 is checked against RFC 3711 B.1
only. libsrtp 2.7.0 derives AES-192 keys with the AES-256 PRF (against
RFC 6188 §7.4; fixed in later libsrtp): AES-192 is checked against the
RFC 6188 key derivation vectors only. The struct layouts below are those of
libsrtp 2.7.0 include/srtp.h; the script checks them against the sizes and
offsets compiled into pylibsrtp's own binding before using them.

The RFC 3711 Appendix B.1 (f8), B.2 (AES-CM keystream) and B.3 (key
derivation), RFC 6188 §7.2 and §7.4 (AES-256 and AES-192 key derivation)
and RFC 7714 §16-17 (AES-GCM packets) lines are computed with the
`cryptography` package (AES ECB/CTR, AESGCM) and asserted against the
values printed in the RFCs before they are written.

Output format, one item per line, hex without separators:

    case NAME                    a packet sequence through one libsrtp session
    suite NAME                   RFC 4568 suite name
    key HEX                      master key || master salt (the suite's sizes)
    mki VALUE LEN                optional; MKI value (decimal) and length in bytes
    rtp PLAIN PROTECTED          libsrtp srtp_protect output
    rtcp PLAIN PROTECTED         libsrtp srtp_protect_rtcp output (E=1)
    rtcp-unprotect PLAIN PROT    SRTCP with E=0 (authenticated, not encrypted):
                                 for unprotect only
    end
    aescm KEY SALT BLOCK KEYSTREAM   RFC 3711 B.2: session key, 14-byte session
                                     salt, block counter (decimal), 16 bytes
    kdf KEY SALT LABEL OUT           RFC 3711 B.3, RFC 6188 §7: master key,
                                     master salt, label (decimal), derived bytes
    f8 KEY SALT HEADER ROC IV PLAIN CIPHER
                                     RFC 3711 B.1: session key and salt, RTP
                                     header, ROC (hex), IV, payload, ciphertext
    aead SUITE KIND INDEX KEY SALT PLAIN PROTECTED
                                     RFC 7714 §16-17: one packet under session
                                     key and salt given directly; KIND rtp, rtcp
                                     (E=1) or rtcp-unprotect (E=0); INDEX (hex)
                                     the SRTP index (ROC 0) or SRTCP index

Packets are listed in the order libsrtp processed them. libsrtp numbers
SRTCP packets from 1 (it increments its counter before the first use).
"""

import struct
import sys

import cffi
import pylibsrtp
from pylibsrtp import Policy, Session
from pylibsrtp._binding import ffi as bound_ffi
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

assert pylibsrtp.__version__ == "1.0.0", pylibsrtp.__version__

# ---------------------------------------------------------------- libsrtp ABI

abi = cffi.FFI()
abi.cdef(
    """
    typedef struct {
        uint32_t cipher_type; int cipher_key_len; uint32_t auth_type;
        int auth_key_len; int auth_tag_len; int sec_serv;
    } srtp_crypto_policy_t;
    typedef struct { int type; unsigned int value; } srtp_ssrc_t;
    typedef struct {
        unsigned char *key; unsigned char *mki_id; unsigned int mki_size;
    } srtp_master_key_t;
    typedef struct srtp_policy_t {
        srtp_ssrc_t ssrc;
        srtp_crypto_policy_t rtp;
        srtp_crypto_policy_t rtcp;
        unsigned char *key;
        srtp_master_key_t **keys;
        unsigned long num_master_keys;
        void *deprecated_ekt;
        unsigned long window_size;
        int allow_repeat_tx;
        int *enc_xtn_hdr;
        int enc_xtn_hdr_count;
        struct srtp_policy_t *next;
    } srtp_policy_t;
    typedef struct srtp_ctx_t_ srtp_ctx_t;
    int srtp_get_version(void);
    void srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(srtp_crypto_policy_t *);
    void srtp_crypto_policy_set_aes_cm_256_hmac_sha1_32(srtp_crypto_policy_t *);
    void srtp_crypto_policy_set_aes_gcm_128_16_auth(srtp_crypto_policy_t *);
    void srtp_crypto_policy_set_aes_gcm_256_16_auth(srtp_crypto_policy_t *);
    void srtp_crypto_policy_set_null_cipher_hmac_sha1_80(srtp_crypto_policy_t *);
    int srtp_crypto_policy_set_from_profile_for_rtp(srtp_crypto_policy_t *, int);
    int srtp_crypto_policy_set_from_profile_for_rtcp(srtp_crypto_policy_t *, int);
    int srtp_create(srtp_ctx_t **session, const srtp_policy_t *policy);
    int srtp_protect_mki(srtp_ctx_t *, void *, int *, unsigned int use_mki, unsigned int mki_index);
    int srtp_unprotect_mki(srtp_ctx_t *, void *, int *, unsigned int use_mki);
    int srtp_protect_rtcp_mki(srtp_ctx_t *, void *, int *, unsigned int use_mki, unsigned int mki_index);
    int srtp_unprotect_rtcp_mki(srtp_ctx_t *, void *, int *, unsigned int use_mki);
    """
)
lib = abi.dlopen(pylibsrtp._binding.__file__)
assert lib.srtp_get_version() == 0x02070000, hex(lib.srtp_get_version())
# The layout above must match what pylibsrtp compiled against libsrtp 2.7.0.
assert abi.sizeof("srtp_policy_t") == bound_ffi.sizeof("srtp_policy_t")
for field in ("ssrc", "rtp", "rtcp", "key", "window_size", "allow_repeat_tx"):
    assert abi.offsetof("srtp_policy_t", field) == bound_ffi.offsetof("srtp_policy_t", field)

PROFILE = {
    "AES_CM_128_HMAC_SHA1_80": Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
    "AEAD_AES_128_GCM": Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
    "AEAD_AES_256_GCM": Policy.SRTP_PROFILE_AEAD_AES_256_GCM,
}
# Suites without a libsrtp profile: the policy setters for RTP and RTCP
# (the _32 suites keep an 80-bit SRTCP tag, RFC 4568 §6.2.2).
SETTER = {
    "AES_256_CM_HMAC_SHA1_80": ("aes_cm_256_hmac_sha1_80", "aes_cm_256_hmac_sha1_80"),
    "AES_256_CM_HMAC_SHA1_32": ("aes_cm_256_hmac_sha1_32", "aes_cm_256_hmac_sha1_80"),
    "NULL_HMAC_SHA1_80": ("null_cipher_hmac_sha1_80", "null_cipher_hmac_sha1_80"),
    "NULL_HMAC_SHA1_32": ("null_cipher_hmac_sha1_80", "null_cipher_hmac_sha1_80"),
}
SEC_SERV_AUTH = 2  # srtp_sec_serv_t sec_serv_auth
SEC_SERV_CONF_AND_AUTH = 3
SSRC_ANY_OUTBOUND = 3
SSRC_ANY_INBOUND = 2


class AbiSession:
    """A libsrtp session built by hand: MKI and per-policy services."""

    def __init__(self, suite, key, ssrc_type, mki=None, rtcp_auth_only=False):
        self._keep = []
        pol = abi.new("srtp_policy_t *")
        if suite in PROFILE:
            assert lib.srtp_crypto_policy_set_from_profile_for_rtp(abi.addressof(pol.rtp), PROFILE[suite]) == 0
            assert lib.srtp_crypto_policy_set_from_profile_for_rtcp(abi.addressof(pol.rtcp), PROFILE[suite]) == 0
        else:
            rtp_setter, rtcp_setter = SETTER[suite]
            getattr(lib, "srtp_crypto_policy_set_" + rtp_setter)(abi.addressof(pol.rtp))
            getattr(lib, "srtp_crypto_policy_set_" + rtcp_setter)(abi.addressof(pol.rtcp))
        if suite.startswith("NULL_"):
            # The null cipher "encrypts" (identity) and SRTCP says E=1, as
            # rtpengine sends it; libsrtp's setter asks for auth only.
            pol.rtp.sec_serv = SEC_SERV_CONF_AND_AUTH
            pol.rtcp.sec_serv = SEC_SERV_CONF_AND_AUTH
            if suite.endswith("_32"):
                pol.rtp.auth_tag_len = 4
        if rtcp_auth_only:
            pol.rtcp.sec_serv = SEC_SERV_AUTH
        pol.ssrc.type = ssrc_type
        keybuf = abi.new("unsigned char[]", key)
        self._keep.append(keybuf)
        self.use_mki = 0
        if mki is None:
            pol.key = keybuf
        else:
            value, length = mki
            mki_id = abi.new("unsigned char[]", value.to_bytes(length, "big"))
            mk = abi.new("srtp_master_key_t *")
            mk.key = keybuf
            mk.mki_id = mki_id
            mk.mki_size = length
            keys = abi.new("srtp_master_key_t *[]", [mk])
            self._keep += [mki_id, mk, keys]
            pol.key = abi.NULL
            pol.keys = keys
            pol.num_master_keys = 1
            self.use_mki = 1
        pol.window_size = 128
        self._keep.append(pol)
        ctx = abi.new("srtp_ctx_t **")
        assert lib.srtp_create(ctx, pol) == 0
        self.ctx = ctx[0]

    def _run(self, func, data, *extra):
        buf = abi.new("unsigned char[]", len(data) + 256)
        buf[0 : len(data)] = data
        n = abi.new("int *", len(data))
        rc = func(self.ctx, buf, n, *extra)
        if rc != 0:
            raise RuntimeError("libsrtp error %d" % rc)
        return bytes(abi.buffer(buf, n[0]))

    def protect(self, p):
        return self._run(lib.srtp_protect_mki, p, self.use_mki, 0)

    def unprotect(self, p):
        return self._run(lib.srtp_unprotect_mki, p, self.use_mki)

    def protect_rtcp(self, p):
        return self._run(lib.srtp_protect_rtcp_mki, p, self.use_mki, 0)

    def unprotect_rtcp(self, p):
        return self._run(lib.srtp_unprotect_rtcp_mki, p, self.use_mki)


# ------------------------------------------------------------------- packets


def payload(n, seed):
    return bytes((seed * 31 + i * 7 + 3) & 0xFF for i in range(n))


def rtp(seq, ts, ssrc, n, pt=0, marker=False, csrcs=(), ext=None, pad=0):
    """RFC 3550 §5.1 packet; ext = (profile, body) with len(body) % 4 == 0."""
    b0 = 0x80 | (0x20 if pad else 0) | (0x10 if ext else 0) | len(csrcs)
    b1 = (0x80 if marker else 0) | pt
    out = struct.pack("!BBHII", b0, b1, seq, ts, ssrc)
    for c in csrcs:
        out += struct.pack("!I", c)
    if ext:
        profile, body = ext
        assert len(body) % 4 == 0
        out += struct.pack("!HH", profile, len(body) // 4) + body
    out += payload(n, seq)
    if pad:
        out += bytes(pad - 1) + bytes([pad])
    return out


def rtcp_packet(pt, count, body):
    assert len(body) % 4 == 0
    return struct.pack("!BBH", 0x80 | count, pt, (len(body) + 4) // 4 - 1) + body


def sdes_cname(ssrc, cname):
    item = bytes([1, len(cname)]) + cname
    chunk = struct.pack("!I", ssrc) + item + b"\0"
    chunk += bytes(-len(chunk) % 4)
    return rtcp_packet(202, 1, chunk)


def sr(ssrc, about, seed):
    body = struct.pack("!IIIIII", ssrc, 0xE0F1A2B3, 0x40000000 + seed, 160 * seed, seed, 172 * seed)
    block = struct.pack("!IIIIII", about, 0x01000005, 0x00010000 + seed, 12, 0x1234, 0x10)
    return rtcp_packet(200, 1, body + block) + sdes_cname(ssrc, b"relay@example.org")


def rr(ssrc):
    return rtcp_packet(201, 0, struct.pack("!I", ssrc)) + sdes_cname(ssrc, b"b")


SSRC_A = 0x11223344
SSRC_B = 0xCAFEBABE
EXT = (0xBEDE, bytes([0x10, 0xAA, 0x21, 0xBB, 0xCC, 0x00, 0x00, 0x00]))


def full_sequence():
    """Covers CSRCs, extension, padding, an empty payload, 65535 -> 0 (ROC 1),
    reordering within the window, two SSRCs, and SRTCP compounds."""
    return [
        ("rtp", rtp(65533, 1000, SSRC_A, 160)),
        ("rtp", rtp(65534, 1160, SSRC_A, 20, csrcs=(0x01020304, 0x0A0B0C0D))),
        ("rtp", rtp(1000, 5, SSRC_B, 33, pt=8)),
        ("rtp", rtp(65535, 1320, SSRC_A, 50, ext=EXT)),
        ("rtp", rtp(0, 1480, SSRC_A, 17, pad=4)),
        ("rtcp", sr(SSRC_A, SSRC_B, 1)),
        ("rtp", rtp(2, 1800, SSRC_A, 1, marker=True)),
        ("rtp", rtp(1, 1640, SSRC_A, 0)),
        ("rtp", rtp(1001, 165, SSRC_B, 40, pt=101, csrcs=(7,), ext=EXT, pad=3)),
        ("rtcp", rr(SSRC_B)),
        ("rtcp", sr(SSRC_A, SSRC_B, 2)),
        ("rtp", rtp(3, 1960, SSRC_A, 160)),
    ]


def short_sequence():
    return [
        ("rtp", rtp(65535, 1, SSRC_A, 160)),
        ("rtp", rtp(0, 161, SSRC_A, 21, csrcs=(9,), ext=EXT)),
        ("rtcp", sr(SSRC_A, SSRC_B, 3)),
        ("rtp", rtp(17, 0, SSRC_B, 5, pad=8)),
        ("rtcp", rr(SSRC_B)),
    ]


# ------------------------------------------------------------------- vectors

K1 = bytes.fromhex("e1f97a0d3e018be0d64fa32c06de4139" "0ec675ad498afeebb6960b3aabe6")
K2 = bytes(range(0x40, 0x40 + 30))

out = []


def emit(line):
    out.append(line)


def case(name, suite, key, seq, mki=None, rtcp_auth_only=False):
    emit("case %s" % name)
    emit("suite %s" % suite)
    emit("key %s" % key.hex())
    if mki is not None:
        emit("mki %d %d" % mki)
    if mki is None and not rtcp_auth_only and suite in PROFILE:
        tx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=PROFILE[suite]))
        rx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=PROFILE[suite]))
    else:
        tx = AbiSession(suite, key, SSRC_ANY_OUTBOUND, mki, rtcp_auth_only)
        rx = AbiSession(suite, key, SSRC_ANY_INBOUND, mki, rtcp_auth_only)
    for kind, plain in seq:
        if kind == "rtp":
            prot = bytes(tx.protect(plain))
            assert bytes(rx.unprotect(prot)) == plain
        else:
            prot = bytes(tx.protect_rtcp(plain))
            assert bytes(rx.unprotect_rtcp(prot)) == plain
            if rtcp_auth_only:
                kind = "rtcp-unprotect"
        emit("%s %s %s" % (kind, plain.hex(), prot.hex()))
    emit("end")


case("full-80", "AES_CM_128_HMAC_SHA1_80", K1, full_sequence())
case("full-32", "AES_CM_128_HMAC_SHA1_32", K2, full_sequence())
case("mki-80", "AES_CM_128_HMAC_SHA1_80", K2, short_sequence(), mki=(1, 1))
case("mki-32", "AES_CM_128_HMAC_SHA1_32", K1, short_sequence(), mki=(0xDEADBEEF, 4))
case("mki-80-len2", "AES_CM_128_HMAC_SHA1_80", K1, short_sequence(), mki=(0x0102, 2))
case(
    "srtcp-unencrypted",
    "AES_CM_128_HMAC_SHA1_80",
    K1,
    [("rtcp", sr(SSRC_A, SSRC_B, 4)), ("rtcp", rr(SSRC_B))],
    rtcp_auth_only=True,
)

K_GCM128 = bytes(range(0x10, 0x10 + 28))
K_GCM256 = bytes.fromhex("f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b6") + bytes(range(0xA0, 0xAC))
K_256 = bytes.fromhex("f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b6" "3b04803de51ee7c96423ab5b78d2")
case("full-gcm128", "AEAD_AES_128_GCM", K_GCM128, full_sequence())
case("full-gcm256", "AEAD_AES_256_GCM", K_GCM256, full_sequence())
case("mki-gcm128", "AEAD_AES_128_GCM", K_GCM128, short_sequence(), mki=(5, 1))
case("mki-gcm256", "AEAD_AES_256_GCM", K_GCM256, short_sequence(), mki=(0x01020304, 4))
case(
    "srtcp-unencrypted-gcm128",
    "AEAD_AES_128_GCM",
    K_GCM128,
    [("rtcp", sr(SSRC_A, SSRC_B, 5)), ("rtcp", rr(SSRC_B))],
    rtcp_auth_only=True,
)
case("full-aes256-80", "AES_256_CM_HMAC_SHA1_80", K_256, full_sequence())
case("aes256-32", "AES_256_CM_HMAC_SHA1_32", K_256, short_sequence())
# No AES-192 cases: libsrtp 2.7.0 derives AES-192 session keys with the
# AES-256 PRF (fixed in later libsrtp), against RFC 6188 §7.4, whose
# vectors below are the check for AES-192.
case("null-80", "NULL_HMAC_SHA1_80", K1, short_sequence())
case("mki-null-32", "NULL_HMAC_SHA1_32", K2, short_sequence(), mki=(7, 1))

# RFC 3711 B.2: AES-CM keystream. Counter blocks are salt*2^16 + j.
b2_key = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")
b2_salt = bytes.fromhex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD")
b2_rfc = {
    0x0000: "E03EAD0935C95E80E166B16DD92B4EB4",
    0x0001: "D23513162B02D0F72A43A2FE4A5F97AB",
    0x0002: "41E95B3BB0A2E8DD477901E4FCA894C0",
    0xFEFF: "EC8CDF7398607CB0F2D21675EA9EA1E4",
    0xFF00: "362B7C3C6773516318A077D7FC5073AE",
    0xFF01: "6A2CC3787889374FBEB4C81B17BA6C44",
}
ecb = Cipher(algorithms.AES(b2_key), modes.ECB()).encryptor()
for j, want in b2_rfc.items():
    got = ecb.update(b2_salt + j.to_bytes(2, "big"))
    assert got == bytes.fromhex(want), (j, got.hex())
    emit("aescm %s %s %d %s" % (b2_key.hex(), b2_salt.hex(), j, got.hex()))

# RFC 3711 B.3: key derivation (kdr 0), PRF = AES-CM with IV = x*2^16.
b3_key = bytes.fromhex("E1F97A0D3E018BE0D64FA32C06DE4139")
b3_salt = bytes.fromhex("0EC675AD498AFEEBB6960B3AABE6")
b3_rfc = {
    0: "C61E7A93744F39EE10734AFE3FF7A087",
    2: "30CBBC08863D8C85D49DB34A9AE1",
    1: "CEBE321F6FF7716B6FD4AB49AF256A15"
    "6D38BAA48F0A0ACF3C34E2359E6CDBCE"
    "E049646C43D9327AD175578EF7227098"
    "6371C10C9A369AC2F94A8C5FBCDDDC25"
    "6D6E919A48B610EF17C2041E47403576"
    "6B68642C59BBFC2F34DB60DBDFB2",
}
for label, want in b3_rfc.items():
    x = bytearray(b3_salt)
    x[7] ^= label  # key_id = label || (index DIV kdr = 0, 48 bits), RFC 3711 §4.3.1
    ctr = Cipher(algorithms.AES(b3_key), modes.CTR(bytes(x) + b"\0\0")).encryptor()
    want = bytes.fromhex(want)
    got = ctr.update(bytes(len(want)))
    assert got == want, (label, got.hex())
    emit("kdf %s %s %d %s" % (b3_key.hex(), b3_salt.hex(), label, got.hex()))

# RFC 6188 §7.2 (AES-256) and §7.4 (AES-192): key derivation, labels 0-2.
rfc6188 = [
    (
        "f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b6",
        "3b04803de51ee7c96423ab5b78d2",
        {
            0: "5ba1064e30ec51613cad926c5a28ef731ec7fb397f70a960653caf06554cd8c4",
            1: "fd9c32d39ed5fbb5a9dc96b30818454d1313dc05",
            2: "fa31791685ca444a9e07c6c64e93",
        },
    ),
    (
        "73edc66c4fa15776fb57f9505c17136550ffda71f3e8e5f1",
        "c8522f3acd4ce86d5add78edbb11",
        {
            0: "31874736a8f1143870c26e4857d8a5b2c4a354407faadabb",
            1: "355b10973cd95b9eacf4061c7e1a7151e7cfbfcb",
            2: "2372b82d639b6d8503a47adc0a6c",
        },
    ),
]
for key_hex, salt_hex, labels in rfc6188:
    key, salt = bytes.fromhex(key_hex), bytes.fromhex(salt_hex)
    for label, want in labels.items():
        x = bytearray(salt)
        x[7] ^= label
        ctr = Cipher(algorithms.AES(key), modes.CTR(bytes(x) + b"\0\0")).encryptor()
        want = bytes.fromhex(want)
        got = ctr.update(bytes(len(want)))
        assert got == want, (key_hex, label, got.hex())
        emit("kdf %s %s %d %s" % (key.hex(), salt.hex(), label, got.hex()))

# RFC 3711 B.1: AES-f8. IV' = E(k_e XOR m, IV), m = k_s || 0x55..55;
# S(j) = E(k_e, IV' XOR j XOR S(j-1)).
f8_key = bytes.fromhex("234829008467be186c3de14aae72d62c")
f8_salt = bytes.fromhex("32f2870d")
f8_header = bytes.fromhex("806e5cba50681de55c621599")
f8_roc = 0xD462564A
f8_plain = bytes.fromhex("70736575646f72616e646f6d6e657373" "20697320746865206e65787420626573" "74207468696e67")
f8_rfc_iv = bytes.fromhex("006e5cba50681de55c621599d462564a")
f8_rfc_iv_prime = bytes.fromhex("595b699bbd3bc0df26062093c1ad8f73")
f8_rfc_cipher = bytes.fromhex("019ce7a26e7854014a6366aa95d4eefd" "1ad4172a14f9faf455b7f1d4b62bd08f" "562c0eef7c4802")
f8_iv = b"\0" + f8_header[1:] + f8_roc.to_bytes(4, "big")
assert f8_iv == f8_rfc_iv
mask = (f8_salt + b"\x55" * 16)[:16]
masked = bytes(a ^ b for a, b in zip(f8_key, mask))
iv_prime = Cipher(algorithms.AES(masked), modes.ECB()).encryptor().update(f8_iv)
assert iv_prime == f8_rfc_iv_prime, iv_prime.hex()
enc = Cipher(algorithms.AES(f8_key), modes.ECB()).encryptor()
s_prev = bytes(16)
f8_out = b""
for j in range(0, len(f8_plain), 16):
    x = bytes(a ^ b for a, b in zip(iv_prime, (j // 16).to_bytes(16, "big")))
    s_prev = enc.update(bytes(a ^ b for a, b in zip(x, s_prev)))
    f8_out += bytes(a ^ b for a, b in zip(f8_plain[j : j + 16], s_prev))
assert f8_out == f8_rfc_cipher, f8_out.hex()
emit(
    "f8 %s %s %s %x %s %s %s"
    % (f8_key.hex(), f8_salt.hex(), f8_header.hex(), f8_roc, f8_iv.hex(), f8_plain.hex(), f8_out.hex())
)

# RFC 7714 §16 (SRTP) and §17 (SRTCP): session key and salt given directly.
# IV = (0x0000 || SSRC || ROC || SEQ) XOR salt (§8.1); SRTCP IV =
# (0x0000 || SSRC || 0x0000 || 0 || index) XOR salt (§9.1); AAD = RTP header,
# or RTCP header and SSRC || E || index (§9.2), or with E=0 the whole packet
# || E || index (§9.3). Wire: ciphertext || tag (|| E || index for SRTCP).
rfc7714_key128 = bytes(range(16))
rfc7714_key256 = bytes(range(32))
rfc7714_salt = b"Quid pro quo"
rfc7714_rtp = bytes.fromhex(
    "8040f17b8041f8d35501a0b247616c6c696120657374206f6d6e697320646976"
    "69736120696e2070617274657320747265"
    "73"
)
rfc7714_rtcp = bytes.fromhex(
    "81c8000d4d6172734e5450314e545032525450200000042a0000e9304c756e61"
    "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef"
)
rfc7714_printed = [
    # (suite, kind, index, key, printed protected packet)
    (
        "AEAD_AES_128_GCM",
        "rtp",
        0xF17B,
        rfc7714_key128,
        "8040f17b8041f8d35501a0b2f24de3a3fb34de6cacba861c9d7e4bcabe633bd5"
        "0d294e6f42a5f47a51c7d19b36de3adf8833899d7f27beb16a9152cf765ee4390cce",
    ),
    (
        "AEAD_AES_256_GCM",
        "rtp",
        0xF17B,
        rfc7714_key256,
        "8040f17b8041f8d35501a0b232b1de78a822fe12ef9f78fa332e33aab1801238"
        "9a58e2f3b50b2a0276ffae0f1ba63799b87b7aa3db36dfffd6b0f9bb7878d7a76c13",
    ),
    (
        "AEAD_AES_128_GCM",
        "rtcp",
        0x5D4,
        rfc7714_key128,
        "81c8000d4d61727363e94885dcdab67ca727d7662f6b7e997ff5c0f76c06f32d"
        "c676a5f1730d6fda4ce09b4686303ded0bb9275bc84aa45896cf4d2fc5abf872"
        "45d9eade800005d4",
    ),
    (
        "AEAD_AES_256_GCM",
        "rtcp",
        0x5D4,
        rfc7714_key256,
        "81c8000d4d617273d50ae4d1f5ce5d304ba297e47d470c282c3ece5dbffe0a50"
        "a2eaa5c1110555be8415f658c61de0476f1b6fad1d1eb30c4446839f57ff6f6c"
        "b26ac3be800005d4",
    ),
    (
        "AEAD_AES_128_GCM",
        "rtcp-unprotect",
        0x5D4,
        rfc7714_key128,
        "81c8000d4d6172734e5450314e545032525450200000042a0000e9304c756e61"
        "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef841dd9683dd78ec92ae58790"
        "125f62b3000005d4",
    ),
]
for suite, kind, index, key, printed in rfc7714_printed:
    aead = AESGCM(key)
    if kind == "rtp":
        plain = rfc7714_rtp
        ssrc = int.from_bytes(plain[8:12], "big")
        x = b"\0\0" + ssrc.to_bytes(4, "big") + index.to_bytes(6, "big")
        iv = bytes(a ^ b for a, b in zip(x, rfc7714_salt))
        got = plain[:12] + aead.encrypt(iv, plain[12:], plain[:12])
    else:
        plain = rfc7714_rtcp
        ssrc = int.from_bytes(plain[4:8], "big")
        x = b"\0\0" + ssrc.to_bytes(4, "big") + b"\0\0" + index.to_bytes(4, "big")
        iv = bytes(a ^ b for a, b in zip(x, rfc7714_salt))
        if kind == "rtcp":
            word = (0x80000000 | index).to_bytes(4, "big")
            got = plain[:8] + aead.encrypt(iv, plain[8:], plain[:8] + word) + word
        else:
            word = index.to_bytes(4, "big")
            got = plain + aead.encrypt(iv, b"", plain + word) + word
    assert got == bytes.fromhex(printed), (suite, kind, got.hex())
    emit(
        "aead %s %s %x %s %s %s %s"
        % (suite, kind, index, key.hex(), rfc7714_salt.hex(), plain.hex(), got.hex())
    )

print("# Generated by tests/data/srtp/gen_vectors.py (libsrtp 2.7.0 via pylibsrtp 1.0.0;")
print("# RFC 3711 B.1-B.3, RFC 6188 §7, RFC 7714 §16-17 via python cryptography); do not edit by hand.")
for line in out:
    print(line)
