//! Integration suites: the public API end to end on a camelCase schema without declared keys, at the
//! scale of the benchmark warehouse, and the evaluation set in `eval/` held at its floors.

mod camel;
mod eval;
mod scale;
