//! RTCP XR (placeholder, filled in next).
