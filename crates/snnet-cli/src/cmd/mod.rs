//! The verbs, one module per group; `main` dispatches to them.

pub(crate) mod eval;
pub(crate) mod export;
pub(crate) mod run;
pub(crate) mod runtime;
pub(crate) mod snnet;
pub(crate) mod space;
pub(crate) mod train;
pub(crate) mod zoo;
