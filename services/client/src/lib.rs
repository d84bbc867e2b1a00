//! tt-client (placeholder: being built).
