//! Size limits applied while parsing untrusted SDP (a relay must bound the
//! work and memory one signalling message can cost).

/// Upper bounds checked by [`Sdp::parse_with_limits`](super::Sdp::parse_with_limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Most input bytes.
    pub max_bytes: usize,
    /// Most lines (blank ones included).
    pub max_lines: usize,
    /// Most `m=` sections.
    pub max_media: usize,
}

impl ParseLimits {
    /// No limit at all (for SDP this crate generated itself).
    pub const UNLIMITED: ParseLimits = ParseLimits {
        max_bytes: usize::MAX,
        max_lines: usize::MAX,
        max_media: usize::MAX,
    };
}

impl Default for ParseLimits {
    /// 64 KiB, 4096 lines, 64 media sections: well above any real call
    /// (WebRTC bodies with many candidates stay under 20 KiB).
    fn default() -> Self {
        ParseLimits {
            max_bytes: 64 * 1024,
            max_lines: 4096,
            max_media: 64,
        }
    }
}
