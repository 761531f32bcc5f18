//! `load-generator [--url URL] [--phases calm,burst,…] [--phase-seconds S] [--deadline-ms D] …`:
//! see [`load_generator::run`].

fn main() -> Result<(), Box<dyn std::error::Error>> {
    load_generator::run(std::env::args().skip(1))
}
