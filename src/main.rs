fn main() {
    std::process::exit(lockrun::run(std::env::args_os()));
}
