//! Quickstart (filled in by the Foundation issue).
fn main() {}
