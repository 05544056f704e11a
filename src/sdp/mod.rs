//! Placeholder: filled in by the sdp work of issue 2.
