//! Integration suites: the SQL corpora, property tests and stack-depth tests.

mod corpus;
mod properties;
mod stack;
