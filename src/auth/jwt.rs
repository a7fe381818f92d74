//! Session JWTs (being written).
