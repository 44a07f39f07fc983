fn main() -> std::process::ExitCode {
    atc::cli::run(std::env::args_os().collect())
}
