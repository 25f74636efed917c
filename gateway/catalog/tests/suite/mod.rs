//! Integration suites: the public API end to end on a camelCase schema without declared keys, and at
//! the scale of the benchmark warehouse.

mod camel;
mod scale;
