//! The command line's settings: a flag for each setting that has one, built from the one
//! settings table ([`VARS`]), and handed over the environment to the one reader.

use std::time::Duration;

use clap::{Arg, ArgMatches, Command};
use colloquy_core::settings::{FlagScope, Program, ServerSettings, Settings, VARS, Var};

use crate::server::ServerLimits;

/// `command` with the store flags on every command and the server flags on `serve`.
pub fn with_setting_flags(command: Command) -> Command {
    let global =
        VARS.iter().enumerate().filter(|(_, v)| v.scope == FlagScope::Global).map(|(i, v)| flag(i, v).global(true));
    let serve: Vec<Arg> =
        VARS.iter().enumerate().filter(|(_, v)| v.scope == FlagScope::Serve).map(|(i, v)| flag(i, v)).collect();
    command.args(global).mut_subcommand("serve", |command| command.args(serve))
}

/// The flag of `var`, listed in `--help` in the table's order.
fn flag(order: usize, var: &Var) -> Arg {
    let about = var.about.replace('`', "");
    let help = match var.default {
        Some(default) => format!("{about} [env: {}] [default: {default}]", var.name),
        None => format!("{about} [env: {}]", var.name),
    };
    Arg::new(var.name).long(var.flag.unwrap_or(var.name)).value_name("VALUE").help(help).display_order(order)
}

/// The settings: flags given on the command line over the environment.
pub fn settings(matches: &ArgMatches) -> Result<Settings, String> {
    let mut levels = vec![matches];
    while let Some((_, sub)) = levels.last().and_then(|m| m.subcommand()) {
        levels.push(sub);
    }
    let given = |name: &str| levels.iter().find_map(|m| m.try_get_one::<String>(name).ok().flatten().cloned());
    Settings::read(Program::Cli, |name| given(name).or_else(|| std::env::var(name).ok()))
}

/// File descriptors kept free for the store, blobs and logs when capping connections.
const RESERVED_FILES: u64 = 256;

impl ServerLimits {
    /// The server's limits; the connection cap stays below `file_limit` (open files allowed).
    pub fn from_settings(settings: &ServerSettings, file_limit: Option<u64>) -> Self {
        let room = file_limit.map_or(usize::MAX, |limit| {
            usize::try_from(limit.saturating_sub(RESERVED_FILES).max(16)).unwrap_or(usize::MAX)
        });
        Self {
            header_timeout: settings.header_timeout.max(Duration::from_secs(1)),
            body_timeout: settings.body_timeout.max(Duration::from_secs(1)),
            idle_timeout: settings.idle_timeout.max(Duration::from_secs(1)),
            max_connections: settings.max_connections.clamp(1, room),
            max_in_flight: settings.max_in_flight.max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser, Subcommand};

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Sub,
    }

    #[derive(Subcommand)]
    enum Sub {
        Serve,
        #[command(subcommand)]
        App(AppSub),
    }

    #[derive(Subcommand)]
    enum AppSub {
        List,
    }

    fn parse(args: &[&str]) -> Settings {
        let matches = with_setting_flags(Cli::command()).try_get_matches_from(args).unwrap();
        settings(&matches).unwrap()
    }

    #[test]
    fn flags_are_read_by_the_one_reader() {
        let settings =
            parse(&["colloquy", "--store", "dynamodb", "serve", "--max-in-flight", "7", "--addr", "0.0.0.0:9"]);
        assert_eq!(settings.store.kind, colloquy_core::settings::StoreKind::Dynamodb);
        assert_eq!(settings.server.max_in_flight, 7);
        assert_eq!(settings.server.addr.to_string(), "0.0.0.0:9");
        // Global flags after a nested command.
        let settings = parse(&["colloquy", "app", "list", "--table", "t2"]);
        assert_eq!(settings.store.table, "t2");
        // Server flags belong to serve.
        assert!(
            with_setting_flags(Cli::command())
                .try_get_matches_from(["colloquy", "app", "list", "--addr", "x"])
                .is_err()
        );
    }

    #[test]
    fn connections_stay_under_the_file_limit() {
        let limits = ServerLimits::from_settings(&Settings::defaults().server, Some(1024));
        assert_eq!(limits.max_connections, 1024 - RESERVED_FILES as usize);
        assert_eq!(ServerLimits::from_settings(&Settings::defaults().server, None).max_connections, 4096);
    }
}
