// SPDX-License-Identifier: MIT OR Apache-2.0
//
// mediarelay kernel fast path: a tc (TCX ingress) classifier that forwards
// the RTP of latched relay streams without waking the relay.
//
// For each IPv4/UDP packet it looks up (destination address, destination
// port) in `routes`. A hit whose source is the stream's latched source and
// whose payload is RTP (RFC 3550 §5.1: version 2, not an RTCP packet type
// under rtcp-mux, RFC 5761 §4) with a payload type the relay leaves to the
// kernel is rewritten in place (source = the relay socket it would have
// been sent from, destination = the far end) and sent on: delivered locally
// when the far end is on this host, else transmitted through the egress
// interface with the neighbour resolved by the kernel (bpf_redirect_neigh).
// Everything else (unknown destinations, any other source, RTCP,
// telephone-event or other punted payload types, non-RTP, IP options,
// fragments, IPv6) goes on to the next program and the stack: the relay
// handles it in userspace exactly as without the fast path.
//
// Checksums (RFC 768, RFC 791): the IPv4 header checksum and the UDP
// checksum are updated incrementally for each rewritten field
// (RFC 1624), honouring the packet's checksum state; a UDP checksum of 0
// (none) stays 0.
//
// Per-stream counters are kept per CPU in `stats`, an array indexed by the
// entry's slot (the relay gives each entry its own): one hash lookup per
// packet, the counters found by index.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

// Keep in sync with src/engine/fastpath/mod.rs (RouteKey, RouteValue,
// StatsValue): plain little structs, no padding holes.
struct route_key {
	__u32 addr;  // local address, network order
	__u16 port;  // local port, network order
	__u16 pad;
};

#define FP_LOCAL 1  // far end on this host: deliver locally

struct route_value {
	__u32 src_addr;   // latched source, network order
	__u16 src_port;
	__u16 flags;      // FP_LOCAL
	__u32 out_addr;   // relay socket the packet leaves from
	__u16 out_port;
	__u16 tos;        // 0x100 | TOS byte to set, or 0 to keep it
	__u32 dst_addr;   // far end
	__u16 dst_port;
	__u16 pad;
	__u32 ifindex;    // egress interface unless FP_LOCAL
	__u32 slot;       // index of the entry's counters in `stats`
	__u64 punt[2];    // payload types (bit n = PT n) left to userspace
};

struct stats_value {
	__u64 packets;
	__u64 bytes;      // UDP payload bytes
	__u64 last_ns;    // CLOCK_MONOTONIC of the last packet
	__u64 seq_jumps;  // packets whose sequence number was not last + 1
	__u32 ssrc;       // of the last packet, host order
	__u16 seq;        // of the last packet, host order
	__u16 pad;
};

// Both sized by the loader to the relay's sockets (one entry per socket
// at most); the sizes here are defaults.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct route_key);
	__type(value, struct route_value);
} routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct stats_value);
} stats SEC(".maps");

#define TCX_NEXT (-1)
#define LOOPBACK_IFINDEX 1
#define IP_OFF (sizeof(struct ethhdr))
#define UDP_OFF (IP_OFF + sizeof(struct iphdr))
#define RTP_OFF (UDP_OFF + sizeof(struct udphdr))
#define IP_CSUM (IP_OFF + offsetof(struct iphdr, check))
#define UDP_CSUM (UDP_OFF + offsetof(struct udphdr, check))

// RFC 1624 (eqn. 3) difference of 32-bit words for an incremental checksum
// update: the ones' complement sum of ~old and new, carries folded back in
// (what bpf_csum_diff returns, without a helper call).
static __always_inline __u32 csum_diff32(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	return (__u32)sum;
}

SEC("classifier")
int mediarelay_forward(struct __sk_buff *skb)
{
	// Aggregated (GRO/GSO) packets carry several datagrams: userspace.
	if (skb->gso_segs > 1)
		return TCX_NEXT;
	if (skb->len < RTP_OFF + 12)
		return TCX_NEXT;
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	if (data + RTP_OFF + 12 > end) {
		// Headers outside the linear area (some drivers): pull them in.
		if (bpf_skb_pull_data(skb, RTP_OFF + 12))
			return TCX_NEXT;
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
		if (data + RTP_OFF + 12 > end)
			return TCX_NEXT;
	}
	struct ethhdr *eth = data;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return TCX_NEXT;
	struct iphdr *ip = data + IP_OFF;
	// No options (ihl 5), no fragments (MF set or an offset), UDP.
	if (ip->ihl != 5 || ip->version != 4 || ip->protocol != IPPROTO_UDP)
		return TCX_NEXT;
	if (ip->frag_off & bpf_htons(0x3fff))
		return TCX_NEXT;
	struct udphdr *udp = data + UDP_OFF;
	struct route_key key = {.addr = ip->daddr, .port = udp->dest, .pad = 0};
	struct route_value *r = bpf_map_lookup_elem(&routes, &key);
	if (!r)
		return TCX_NEXT;
	if (ip->saddr != r->src_addr || udp->source != r->src_port)
		return TCX_NEXT;
	// One whole datagram: UDP length = IP payload, within the packet (an
	// Ethernet frame may carry padding after it).
	__u16 udp_len = bpf_ntohs(udp->len);
	__u16 ip_len = bpf_ntohs(ip->tot_len);
	if (udp_len < sizeof(struct udphdr) + 12 || ip_len != udp_len + sizeof(struct iphdr))
		return TCX_NEXT;
	if (IP_OFF + ip_len > skb->len)
		return TCX_NEXT;
	__u8 *rtp = data + RTP_OFF;
	if ((rtp[0] >> 6) != 2)
		return TCX_NEXT;
	// RFC 5761 §4: second octet 192-223 is RTCP (packet types 192-223).
	if (rtp[1] >= 192 && rtp[1] <= 223)
		return TCX_NEXT;
	__u8 pt = rtp[1] & 0x7f;
	// Both words loaded and one chosen by value: a map value pointer
	// offset by a packet-derived index is refused to loaders without
	// CAP_PERFMON (Spectre v1 sanitation), and the relay runs with only
	// CAP_BPF and CAP_NET_ADMIN.
	__u64 punt_lo = r->punt[0], punt_hi = r->punt[1];
	asm volatile("" : "+r"(punt_lo), "+r"(punt_hi));
	__u64 punt = pt < 64 ? punt_lo : punt_hi;
	if (punt & (1ULL << (pt & 63)))
		return TCX_NEXT;
	__u16 seq = ((__u16)rtp[2] << 8) | rtp[3];
	__u32 ssrc = ((__u32)rtp[8] << 24) | ((__u32)rtp[9] << 16) | ((__u32)rtp[10] << 8) | rtp[11];

	// The new addresses and ports as they lie in the headers: source
	// address, destination address (IPv4), source port, destination port
	// (UDP, right after a header without options): 12 contiguous bytes,
	// written with one store. Copied out first: the helpers below
	// invalidate packet pointers.
	struct {
		__u32 saddr, daddr;
		__u16 sport, dport;
	} new_hdr = {r->out_addr, r->dst_addr, r->out_port, r->dst_port};
	__u32 old_saddr = ip->saddr, old_daddr = ip->daddr;
	__u32 old_ports, new_ports;
	__builtin_memcpy(&old_ports, &udp->source, sizeof(old_ports));
	__builtin_memcpy(&new_ports, &new_hdr.sport, sizeof(new_ports));
	__u16 tos = r->tos;
	__u16 flags = r->flags;
	__u32 ifindex = r->ifindex;
	__u32 slot = r->slot;
	__u16 old_tos_word = *(__u16 *)ip;  // version/ihl and TOS

	// RFC 1624 incremental updates: one sum of differences for the
	// addresses (IPv4 header checksum, and the UDP checksum through its
	// pseudo-header) and one for the ports (UDP checksum only). The
	// helpers apply them as the packet's checksum state requires; a zero
	// UDP checksum (none sent) stays zero (BPF_F_MARK_MANGLED_0).
	__u32 addr_diff = csum_diff32((__u64)(__u32)~old_saddr + (__u32)~old_daddr +
				      new_hdr.saddr + new_hdr.daddr);
	__u32 port_diff = csum_diff32((__u64)(__u32)~old_ports + new_ports);
	if (bpf_l4_csum_replace(skb, UDP_CSUM, 0, addr_diff, BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0))
		return TCX_NEXT;
	if (bpf_l4_csum_replace(skb, UDP_CSUM, 0, port_diff, BPF_F_MARK_MANGLED_0))
		return TC_ACT_SHOT;
	if (bpf_l3_csum_replace(skb, IP_CSUM, 0, addr_diff, 0))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, IP_OFF + offsetof(struct iphdr, saddr), &new_hdr, sizeof(new_hdr), 0))
		return TC_ACT_SHOT;
	if (tos & 0x100) {
		// The relay's DSCP/ECN marking (--tos), as its sockets would set.
		__u16 new_tos_word = old_tos_word;
		((__u8 *)&new_tos_word)[1] = (__u8)tos;
		if (new_tos_word != old_tos_word) {
			if (bpf_l3_csum_replace(skb, IP_CSUM, old_tos_word, new_tos_word, 2))
				return TC_ACT_SHOT;
			if (bpf_skb_store_bytes(skb, IP_OFF, &new_tos_word, 2, 0))
				return TC_ACT_SHOT;
		}
	}

	// The entry's counters (zeroed by the relay when it installs it).
	struct stats_value *s = bpf_map_lookup_elem(&stats, &slot);
	if (s) {
		if (s->packets && seq != (__u16)(s->seq + 1))
			s->seq_jumps++;
		s->packets++;
		s->bytes += udp_len - sizeof(struct udphdr);
		s->last_ns = bpf_ktime_get_ns();
		s->ssrc = ssrc;
		s->seq = seq;
	}

	if (flags & FP_LOCAL) {
		if (skb->ifindex == LOOPBACK_IFINDEX)
			return TC_ACT_OK;
		// Arrived on a real interface for a far end on this host: hand
		// it to the loopback device's receive path (a local source
		// address would be a martian on the real one). Its destination
		// MAC must be lo's (all zero) to count as for this host.
		__u8 zero_mac[ETH_ALEN] = {};
		if (bpf_skb_store_bytes(skb, 0, zero_mac, ETH_ALEN, 0))
			return TC_ACT_SHOT;
		return bpf_redirect(LOOPBACK_IFINDEX, BPF_F_INGRESS);
	}
	return bpf_redirect_neigh(ifindex, NULL, 0, 0);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
