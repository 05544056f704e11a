//! Placeholder: filled in by the ports work of issue 2.
