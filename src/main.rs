fn main() -> std::process::ExitCode {
    opswatch::cli::main()
}
