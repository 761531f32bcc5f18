//! Prints [`quickstart::report`]: `cargo run --release -p quickstart`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    print!("{}", quickstart::report()?);
    Ok(())
}
