use std::path::PathBuf;

/// Everything a statement or a library call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The statement text does not parse; the message draws a caret under the spot.
    #[error("{0}")]
    Parse(#[from] gnnrec_query::ParseError),
    /// The store refused or failed (unknown user, locked database, I/O, ...).
    #[error("{0}")]
    Storage(#[from] gnnrec_storage::Error),
    /// A row of a CSV file is malformed; nothing of the file was applied.
    #[error("{}:{line}: {reason}", path.display())]
    Csv { path: PathBuf, line: u64, reason: String },
    /// A file could not be read.
    #[error("cannot read '{}': {}", path.display(), io_reason(source))]
    Io { path: PathBuf, source: std::io::Error },
    /// A statement or argument that is well-formed but not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// The item index could not be built, saved or loaded.
    #[error("item index: {0}")]
    Index(#[from] crate::ann::AnnError),
    /// A statement whose engine part this version does not have yet.
    #[error("{0} is not available yet in this version of gnnrec")]
    NotAvailable(&'static str),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An I/O error as a lowercase phrase, without the "(os error N)" suffix.
fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::NotFound => "no such file".into(),
        ErrorKind::PermissionDenied => "permission denied".into(),
        ErrorKind::IsADirectory => "it is a directory".into(),
        _ => {
            let text = e.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text).to_owned();
            let mut chars = text.chars();
            chars.next().map_or(text.clone(), |c| c.to_lowercase().chain(chars).collect())
        }
    }
}
