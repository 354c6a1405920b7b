use std::io::{self, IsTerminal};
use std::process::ExitCode;

/// TRAIN allocates every tensor of a step afresh; glibc's malloc returns that memory to the
/// kernel and faults it back in (a quarter of TRAIN's wall time), mimalloc reuses it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
