//! Test modules and the shared harness.

mod escape;
mod files;
mod gvisor;
mod harness;
mod projects;
mod protocol;
mod python_stack;
