//! Placeholder: filled in by the rtcp work of issue 2.
