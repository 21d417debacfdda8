//! Integration tests: real `lockrun` processes contending for real locks in temp dirs.

mod testenv;

mod docs;
mod with;
