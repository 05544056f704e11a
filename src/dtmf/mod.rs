//! Placeholder: filled in by the dtmf work of issue 2.
