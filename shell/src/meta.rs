//! Meta-commands: lines starting with `.` between statements, handled by the shell itself.

use std::path::PathBuf;

pub(crate) const HELP: &str = "\
Statements end with ';' and may span lines; '--' starts a comment. For example:
  ADD alice click sku-1 [WEIGHT 2.5] [AT 1700000000];
  LOAD 'events.csv';                     -- header: user,item,type[,weight][,timestamp]
  DELETE alice click sku-1;  DELETE USER alice;  DELETE ITEM sku-1;
  CREATE TYPE view WEIGHT 0.1;
  SHOW STATS;  SHOW TYPES;  SHOW MODEL;  SHOW WORKER;  SHOW USER alice;  SHOW ITEM sku-1;
  SET durability = full;                 -- or wal
  SET worker = on;                       -- or off, manual; worker.batch = 1000, worker.interval = 5s,
                                         -- worker.epochs = 3
  SYNC;                                  -- wait until the model is trained through every edge
  TRAIN [EPOCHS 20] [WITH dim = 64, loss = hinge, ...];
  SCORE alice sku-1 [FOR like];
  RECOMMEND alice TOP 10 EXCLUDE SEEN [FOR like];
  SIMILAR sku-1 TOP 10;
  EXPLAIN RECOMMEND alice TOP 10 EXCLUDE SEEN;
  EVAL 'held-out.csv' TOP 20 [FOR like];
Meta-commands:
  .help          show this help
  .read FILE     run the statements in FILE
  .quit, .exit   leave the shell";

/// A meta-command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Meta {
    Help,
    Read(PathBuf),
    Quit,
}

impl Meta {
    /// Parses a line that starts with `.`. The error is a one-line message.
    pub(crate) fn parse(line: &str) -> Result<Meta, String> {
        let line = line.trim();
        let (name, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        let no_argument = |meta: Meta| match rest {
            "" => Ok(meta),
            _ => Err(format!("{name} takes no argument")),
        };
        match name {
            ".help" => no_argument(Meta::Help),
            ".quit" | ".exit" => no_argument(Meta::Quit),
            ".read" => match unquote(rest) {
                "" => Err("usage: .read FILE".to_owned()),
                path => Ok(Meta::Read(PathBuf::from(path))),
            },
            _ => Err(format!("unknown command '{name}' (try .help)")),
        }
    }
}

/// A file name may be quoted, so that it can hold spaces or end in one.
fn unquote(s: &str) -> &str {
    for quote in ['\'', '"'] {
        if let Some(inner) = s.strip_prefix(quote).and_then(|s| s.strip_suffix(quote)) {
            return inner;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(Meta::parse(".help"), Ok(Meta::Help));
        assert_eq!(Meta::parse("  .quit  "), Ok(Meta::Quit));
        assert_eq!(Meta::parse(".exit"), Ok(Meta::Quit));
        assert_eq!(Meta::parse(".read data/x.gq"), Ok(Meta::Read("data/x.gq".into())));
        assert_eq!(Meta::parse(".read\t'my file.gq'"), Ok(Meta::Read("my file.gq".into())));
        assert_eq!(Meta::parse(".read \"a b\""), Ok(Meta::Read("a b".into())));
    }

    #[test]
    fn errors() {
        assert_eq!(Meta::parse(".read"), Err("usage: .read FILE".into()));
        assert_eq!(Meta::parse(".read ''"), Err("usage: .read FILE".into()));
        assert_eq!(Meta::parse(".quit now"), Err(".quit takes no argument".into()));
        assert_eq!(Meta::parse(".tables"), Err("unknown command '.tables' (try .help)".into()));
        assert_eq!(Meta::parse("."), Err("unknown command '.' (try .help)".into()));
    }
}
