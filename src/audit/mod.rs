//! Audit trail (being written).
