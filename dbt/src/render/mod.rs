//! Text renderings of an analysis: the project map for agents and people, and findings reports for CI.

pub mod map;
pub mod report;
pub mod sarif;
