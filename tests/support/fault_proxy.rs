//! Fault-injecting proxy (being written).
