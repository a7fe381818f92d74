//! The synthetic CoWIN-shaped registry (placeholder; being written).
