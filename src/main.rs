//! The `alltick-stream` binary; all logic lives in the library.

fn main() {
    std::process::exit(alltick_stream::app::run());
}
