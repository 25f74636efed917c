//! Test modules and the shared harness.

mod escape;
mod files;
mod gvisor;
mod harness;
mod outputs;
mod projects;
mod protocol;
mod python_stack;
mod svg_renderer;
mod zygote;
