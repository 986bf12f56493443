//! The `masterclass` binary: the command line lives in [`masterclass::cli`].

fn main() -> std::process::ExitCode {
    masterclass::cli::main()
}
