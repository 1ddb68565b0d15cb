//! The integration tests, one crate (one link, one process whose threads
//! run every test): each module is one area of the command contract, and
//! `common` holds what they share. They drive the real `snap` binary, and
//! some the library, against local, encrypted and S3 repositories.

mod attack_review;
mod attack_review3;
mod cli_backup_restore;
mod cli_completions;
mod cli_copy;
mod cli_diff;
mod cli_dump;
mod cli_encryption;
mod cli_errors;
mod cli_find;
mod cli_help;
mod cli_metadata;
mod cli_prune;
mod cli_restore_safety;
mod cli_selection;
mod cli_sha256;
mod cli_size_hiding;
mod cli_snapshots;
mod cli_stats;
mod cli_verify;
mod cli_watch;
mod common;
mod compat;
mod crash;
mod damage_property;
mod damaged_trees;
mod faults;
mod hostile_trees;
mod index_rebuild;
mod large_dirs;
mod lock_protocol;
mod long_paths;
mod reliability;
mod restore_limits;
mod restore_races;
mod server_faults;
mod storages;
