//! Ownership checks (being written).
