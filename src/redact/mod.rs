//! Streaming JSON redaction (being written).
