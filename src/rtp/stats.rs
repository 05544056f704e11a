//! Receive statistics (filled in by the RTP/RTCP work of issue 2).
