//! The `fpr` command's parts: the command tree ([`args`]), each subcommand run
//! ([`dispatch`]) and `fpr up`'s banner ([`banner`]).

pub(crate) mod args;
pub(crate) mod banner;
pub(crate) mod dispatch;
