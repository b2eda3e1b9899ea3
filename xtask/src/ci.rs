pub fn run(_: &std::path::Path, _: Args) -> anyhow::Result<()> {
    Ok(())
}
#[derive(clap::Args)]
pub struct Args {}
