//! App Container schema (appc spec v0.8.11): typed manifests and their validation. No I/O.
