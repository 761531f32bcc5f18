//! `load-generator [--url URL] [--peak-rps R] [--seconds S] [--output FILE.svg]`: see
//! [`load_generator::run`].

fn main() -> Result<(), Box<dyn std::error::Error>> {
    load_generator::run(std::env::args().skip(1))
}
