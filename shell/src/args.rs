//! The command line, parsed by hand: a handful of flags does not need an argument library.

use std::path::PathBuf;

pub(crate) const USAGE: &str = "\
usage: gnnrec-shell [OPTIONS] [DB_PATH]

Opens the gnnrec database at DB_PATH (created when missing) and reads statements from the
terminal, from piped standard input, or from the sources given with -f and -c. Without
DB_PATH a temporary database is used and removed on exit.

options:
  -f, --file FILE    run the statements in FILE ('-' for standard input); may be repeated
  -c, --command TEXT run the statements in TEXT; may be repeated
      --json         print each result, and each error, as one JSON object per line
      --keep-going   report a failed statement and go on instead of stopping
  -h, --help         print this help and exit
  -V, --version      print the version and exit

exit codes: 0 ok, 1 a statement failed, 2 usage or I/O error";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    Help,
    Version,
    Run(Args),
}

/// The options of a run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Args {
    pub db_path: Option<PathBuf>,
    /// The `-f` and `-c` sources, in command-line order; none means standard input.
    pub sources: Vec<Source>,
    pub json: bool,
    pub keep_going: bool,
}

/// Where statements come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// A script file; `-` is standard input.
    File(PathBuf),
    /// The text of a `-c` option.
    Text(String),
}

/// Parses the arguments after the program name. The error is a one-line message.
pub(crate) fn parse(args: &[String]) -> Result<Command, String> {
    let mut parsed = Args::default();
    let mut args = args.iter();
    let mut options_done = false;
    while let Some(arg) = args.next() {
        if options_done || arg == "-" || !arg.starts_with('-') {
            if let Some(first) = &parsed.db_path {
                return Err(format!("more than one database path ('{}' and '{arg}')", first.display()));
            }
            parsed.db_path = Some(PathBuf::from(arg));
            continue;
        }
        // `--file=x` is `--file x`.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if arg.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        if inline.is_some() && !matches!(flag, "-f" | "--file" | "-c" | "--command") {
            return Err(format!("option '{flag}' takes no value"));
        }
        let mut value = |name: &str| match inline.clone().or_else(|| args.next().cloned()) {
            Some(v) => Ok(v),
            None => Err(format!("option '{name}' needs a value")),
        };
        match flag {
            "--" => options_done = true,
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "-f" | "--file" => parsed.sources.push(Source::File(PathBuf::from(value(flag)?))),
            "-c" | "--command" => parsed.sources.push(Source::Text(value(flag)?)),
            "--json" => parsed.json = true,
            "--keep-going" => parsed.keep_going = true,
            _ => return Err(format!("unknown option '{arg}'")),
        }
    }
    Ok(Command::Run(parsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Command, String> {
        parse(&args.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_sources_and_path() {
        let got =
            parse_strs(&["--json", "db", "-f", "a.gq", "--command=SHOW STATS", "-c", "x", "--keep-going"]);
        let want = Args {
            db_path: Some("db".into()),
            sources: vec![
                Source::File("a.gq".into()),
                Source::Text("SHOW STATS".into()),
                Source::Text("x".into()),
            ],
            json: true,
            keep_going: true,
        };
        assert_eq!(got, Ok(Command::Run(want)));
        assert_eq!(parse_strs(&[]), Ok(Command::Run(Args::default())));
        assert_eq!(parse_strs(&["db", "--help"]), Ok(Command::Help));
        assert_eq!(parse_strs(&["-V"]), Ok(Command::Version));
    }

    #[test]
    fn double_dash_ends_options() {
        let want = Args { db_path: Some("-odd".into()), ..Args::default() };
        assert_eq!(parse_strs(&["--", "-odd"]), Ok(Command::Run(want)));
    }

    #[test]
    fn usage_errors() {
        assert_eq!(parse_strs(&["--frobnicate"]), Err("unknown option '--frobnicate'".into()));
        assert_eq!(parse_strs(&["-f"]), Err("option '-f' needs a value".into()));
        assert_eq!(parse_strs(&["--json=yes"]), Err("option '--json' takes no value".into()));
        assert_eq!(parse_strs(&["a", "b"]), Err("more than one database path ('a' and 'b')".into()));
    }
}
