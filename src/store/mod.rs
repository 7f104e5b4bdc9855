//! The content-addressed image store.
