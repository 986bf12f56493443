fn main() -> std::process::ExitCode {
    masterclass::cli::main()
}
