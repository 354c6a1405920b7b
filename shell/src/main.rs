use std::io::{self, IsTerminal};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = Vec::new();
    for arg in std::env::args_os().skip(1) {
        match arg.into_string() {
            Ok(arg) => args.push(arg),
            Err(arg) => {
                eprintln!("gnnrec-shell: argument {arg:?} is not valid UTF-8");
                return ExitCode::from(2);
            }
        }
    }
    let streams = gnnrec_shell::Streams {
        stdin: &mut io::stdin().lock(),
        stdout: &mut io::stdout(),
        stderr: &mut io::stderr(),
        stdin_is_terminal: io::stdin().is_terminal(),
        stderr_is_terminal: io::stderr().is_terminal(),
    };
    let status = gnnrec_shell::run(&args, streams);
    ExitCode::from(u8::try_from(status).unwrap_or(2))
}
