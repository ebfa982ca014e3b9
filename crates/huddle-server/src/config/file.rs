//! The TOML configuration file. Its keys are the long flag names (`udp`, `public-ip`,
//! `max-rooms`; `_` may stand for `-`), its values what the flags take (a list for flags
//! that take several). It is merged in as the flags' defaults, so that an environment
//! variable overrides the file and a flag overrides both; every key and value is checked
//! against the flag's own parser, with the file and key named in the error.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{CommandFactory, FromArgMatches};

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0} is not valid TOML: {1}")]
    Syntax(PathBuf, String),
    #[error("{0}: unknown key `{1}`; known keys: {2}")]
    UnknownKey(PathBuf, String, String),
    #[error("{0}: `{1}`: {2}")]
    Value(PathBuf, String, String),
    /// The command line itself (includes `--help` and `--version`).
    #[error(transparent)]
    Cli(#[from] clap::Error),
}

/// The environment variable that names the file when `--config` does not.
pub const ENV: &str = "HUDDLE_CONFIG";

/// Arguments that are not options of the server.
const NOT_IN_FILE: [&str; 3] = ["help", "version", "config"];

/// Parses `args` (the first is the program name) into `P`, with the file named by
/// `--config` or `HUDDLE_CONFIG` as the defaults.
pub fn parse<P: clap::Parser>(
    args: impl IntoIterator<Item = impl Into<OsString>>,
) -> Result<P, FileError> {
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut command = P::command();
    if let Some(path) = config_path(&args) {
        let text = std::fs::read_to_string(&path).map_err(|e| FileError::Read(path.clone(), e))?;
        command = apply(command, &path, &text)?;
    }
    let matches = command.try_get_matches_from(args)?;
    Ok(P::from_arg_matches(&matches)?)
}

/// The file's options laid over `command`'s defaults, each value checked by its flag's parser.
pub fn apply(
    mut command: clap::Command,
    path: &Path,
    text: &str,
) -> Result<clap::Command, FileError> {
    let table: toml::Table =
        toml::from_str(text).map_err(|e| FileError::Syntax(path.to_owned(), e.to_string()))?;
    for (key, value) in table {
        let name = key.replace('_', "-");
        let Some(arg) = command
            .get_arguments()
            .find(|a| a.get_long() == Some(name.as_str()) && !NOT_IN_FILE.contains(&name.as_str()))
        else {
            return Err(FileError::UnknownKey(
                path.to_owned(),
                key,
                keys(&command).join(", "),
            ));
        };
        let values = scalars(&value).ok_or_else(|| {
            FileError::Value(
                path.to_owned(),
                key.clone(),
                "expected a string, number, boolean or a list of them".into(),
            )
        })?;
        let many = matches!(arg.get_action(), clap::ArgAction::Append)
            || arg.get_value_delimiter().is_some();
        if values.len() != 1 && !many {
            return Err(FileError::Value(
                path.to_owned(),
                key,
                "takes one value, not a list".into(),
            ));
        }
        for v in &values {
            check(arg, v).map_err(|why| FileError::Value(path.to_owned(), key.clone(), why))?;
        }
        let id = arg.get_id().clone();
        command = command.mut_arg(id, |a| a.default_values(values));
    }
    Ok(command)
}

/// Checks one value with its flag's own parser (as if given on the command line).
fn check(arg: &clap::Arg, value: &str) -> Result<(), String> {
    if matches!(
        arg.get_action(),
        clap::ArgAction::SetTrue | clap::ArgAction::SetFalse
    ) {
        return match value {
            "true" | "false" => Ok(()),
            _ => Err(format!("{value:?}: expected true or false")),
        };
    }
    let Some(long) = arg.get_long() else {
        return Ok(());
    };
    let alone = clap::Command::new("huddle").no_binary_name(true).arg(
        arg.clone()
            .env(None::<&str>)
            .required(false)
            .requires(clap::builder::Resettable::<clap::Id>::Reset),
    );
    match alone.try_get_matches_from([format!("--{long}"), value.to_owned()]) {
        Ok(_) => Ok(()),
        Err(e) => Err(clap_reason(&e)),
    }
}

/// Every key a file may hold: the server's long flag names.
pub fn keys(command: &clap::Command) -> Vec<String> {
    command
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|l| !NOT_IN_FILE.contains(l))
        .map(str::to_owned)
        .collect()
}

/// A TOML value as the strings a flag would take.
fn scalars(value: &toml::Value) -> Option<Vec<String>> {
    match value {
        toml::Value::String(s) => Some(vec![s.clone()]),
        toml::Value::Integer(i) => Some(vec![i.to_string()]),
        toml::Value::Float(f) => Some(vec![f.to_string()]),
        toml::Value::Boolean(b) => Some(vec![b.to_string()]),
        toml::Value::Array(items) => items
            .iter()
            .map(|v| {
                scalars(v)
                    .filter(|s| s.len() == 1)
                    .and_then(|mut s| s.pop())
            })
            .collect(),
        toml::Value::Datetime(_) | toml::Value::Table(_) => None,
    }
}

/// The one line of a value parser's complaint that says what is wrong.
fn clap_reason(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_owned()
}

/// `--config PATH`, `--config=PATH`, or the environment's `HUDDLE_CONFIG`.
fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let Some(s) = a.to_str() else { continue };
        if s == "--" {
            break;
        }
        if s == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(p) = s.strip_prefix("--config=") {
            return Some(PathBuf::from(p));
        }
    }
    std::env::var_os(ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The server's options alone, as a parser (for tests and tools that read a file).
#[derive(Debug, clap::Parser)]
#[command(name = "huddle")]
pub struct ServerArgs {
    #[command(flatten)]
    pub config: super::Config,
}

/// Reads `text` (as if from `path`) and the command line `args` into a configuration.
pub fn parse_text(path: &Path, text: &str, args: &[&str]) -> Result<super::Config, FileError> {
    let command = apply(ServerArgs::command(), path, text)?;
    let argv = std::iter::once("huddle").chain(args.iter().copied());
    let matches = command.try_get_matches_from(argv)?;
    Ok(ServerArgs::from_arg_matches(&matches)?.config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn path() -> PathBuf {
        PathBuf::from("huddle.toml")
    }

    #[test]
    fn file_values_are_defaults_that_flags_override() {
        let text = r#"
            http = "127.0.0.1:9000"
            udp = "127.0.0.1:41000"
            public-ip = "203.0.113.7"
            max_rooms = 7
            no-auth = true
            turn-ttl = "2h"
        "#;
        let c = parse_text(&path(), text, &[]).unwrap();
        assert_eq!(c.http.port(), 9000);
        assert_eq!(
            c.public_ip,
            vec!["203.0.113.7".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(c.limits.max_rooms, 7);
        assert!(c.no_auth);
        assert_eq!(c.turn_ttl, Duration::from_secs(7200));
        let list = parse_text(
            &path(),
            r#"public-ip = ["203.0.113.7", "2001:db8::7"]"#,
            &[],
        )
        .unwrap();
        assert_eq!(
            list.public_ip,
            ["203.0.113.7", "2001:db8::7"]
                .map(|s| s.parse::<std::net::IpAddr>().unwrap())
                .to_vec()
        );
        let c = parse_text(
            &path(),
            text,
            &["--http", "127.0.0.1:9001", "--max-rooms", "8"],
        )
        .unwrap();
        assert_eq!(c.http.port(), 9001);
        assert_eq!(c.limits.max_rooms, 8);
        assert_eq!(c.udp.port(), 41000, "untouched keys keep the file's value");
    }

    #[test]
    fn ice_tcp_is_on_unless_turned_off() {
        assert!(parse_text(&path(), "", &[]).unwrap().ice_tcp);
        let off = "ice-tcp = false";
        assert!(!parse_text(&path(), off, &[]).unwrap().ice_tcp);
        assert!(
            parse_text(&path(), off, &["--ice-tcp", "true"])
                .unwrap()
                .ice_tcp
        );
        assert!(
            !parse_text(&path(), "", &["--ice-tcp", "false"])
                .unwrap()
                .ice_tcp
        );
        let e = parse_text(&path(), "ice-tcp = \"maybe\"", &[])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("huddle.toml: `ice-tcp`:"), "{e}");
    }

    #[test]
    fn cluster_options_come_from_the_file_and_are_checked() {
        let text = r#"
            redis = "redis://127.0.0.1:6379/"
            node-id = "media-1"
            public-url = "http://10.0.0.5:8080"
        "#;
        let c = parse_text(&path(), text, &[]).unwrap();
        assert_eq!(c.redis.as_deref(), Some("redis://127.0.0.1:6379/"));
        assert_eq!(c.node_id.as_deref(), Some("media-1"));
        assert_eq!(c.public_url.as_deref(), Some("http://10.0.0.5:8080"));
        c.validate().unwrap();
        for (flag, bad) in [
            ("--redis", "mysql://x"),
            ("--public-url", "10.0.0.5:8080"),
            ("--public-url", "http://10.0.0.5:8080/huddle"),
            ("--node-id", "has space"),
        ] {
            let c = parse_text(&path(), "", &[flag, bad]).unwrap();
            let e = c.validate().unwrap_err().to_string();
            assert!(e.starts_with(flag), "{flag} {bad}: {e}");
        }
    }

    #[test]
    fn mistakes_are_named() {
        let e = parse_text(&path(), "max-room = 3", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown key `max-room`") && e.contains("max-rooms"),
            "{e}"
        );
        let e = parse_text(&path(), "udp = \"nowhere\"", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("huddle.toml: `udp`:") && e.contains("nowhere"),
            "{e}"
        );
        let e = parse_text(&path(), "http = [\"a\", \"b\"]", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("one value"), "{e}");
        let e = parse_text(&path(), "udp = ", &[]).unwrap_err().to_string();
        assert!(e.contains("not valid TOML"), "{e}");
        let e = parse_text(&path(), "[limits]\nmax-rooms = 1", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown key `limits`"), "{e}");
    }
}
