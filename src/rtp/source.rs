//! Outbound RTP source state (filled in by the RFC 4733 work of issue 2).
