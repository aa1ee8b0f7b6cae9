//! The `ostiary` command.

fn main() {}
