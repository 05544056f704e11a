//! Placeholder: filled in by the codec work of issue 2.
