//! The command line, as clap sees it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use rkt::insecure::InsecureOptions;

/// rkt runs App Container images in pods on systemd hosts.
///
/// Images are fetched into a content-addressed store under --dir and verified before use.
/// rkt's own failures exit with status 254.
#[derive(Debug, Parser)]
#[command(name = "rkt", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Directory holding the image store and pods
    #[arg(long, global = true, default_value = "/var/lib/rkt", env = "RKT_DIR")]
    pub dir: PathBuf,
    /// Print debugging output on stderr
    #[arg(long, global = true)]
    pub debug: bool,
    /// Checks to skip, comma-separated: none, image, tls, http, pubkey, capabilities, paths,
    /// seccomp, all-fetch, all-run, all
    #[arg(long, global = true, default_value = "none", value_name = "LIST")]
    pub insecure_options: InsecureOptions,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch image files into the store and print their image IDs
    #[command(after_help = "\
Examples:
  rkt --insecure-options=image fetch ./busybox.aci
  rkt --dir /srv/rkt --insecure-options=image fetch a.aci b.aci.xz

Images are verified by default. Signature checks (rkt trust) are not implemented yet, so every
fetch needs --insecure-options=image for now; rkt refuses otherwise. Fetching an image that is
already stored prints its ID and stores nothing new.")]
    Fetch(FetchArgs),
    /// Work with the images in the store
    #[command(subcommand)]
    Image(ImageCommand),
    /// Print the version of rkt and of the App Container spec it implements
    Version,
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// ACI files (.aci; gzip, bzip2, xz or uncompressed)
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List the images in the store
    List(ImageListArgs),
    /// Print the manifest of an image
    CatManifest(CatManifestArgs),
    /// Remove images and all their files from the store
    Rm(ImageRmArgs),
    /// Write an image to an ACI file, byte for byte as it was fetched
    Export(ImageExportArgs),
    /// Unpack an image (manifest and rootfs) into a directory
    Extract(ImageExtractArgs),
    /// Write the root filesystem an app of the image sees into a directory
    Render(ImageRenderArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for people
    Table,
    /// One line of JSON
    Json,
    /// Indented JSON
    JsonPretty,
}

#[derive(Debug, Args)]
pub struct ImageListArgs {
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Show full image IDs and exact times
    #[arg(long)]
    pub full: bool,
    /// Leave out the header line
    #[arg(long)]
    pub no_legend: bool,
}

#[derive(Debug, Args)]
pub struct CatManifestArgs {
    /// Image ID (or unique prefix) or name[:version]
    pub image: String,
    /// Indent the JSON; with --pretty-print=false the manifest is printed as stored
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub pretty_print: bool,
}

#[derive(Debug, Args)]
pub struct ImageRmArgs {
    /// Image IDs (or unique prefixes) or names[:version]
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImageExportArgs {
    /// Image ID (or unique prefix) or name[:version]
    pub image: String,
    /// File to write
    pub output: PathBuf,
    /// Replace the output file if it exists
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Debug, Args)]
pub struct ImageExtractArgs {
    /// Image ID (or unique prefix) or name[:version]
    pub image: String,
    /// Directory to write (missing or empty)
    #[arg(value_name = "DIR")]
    pub target: PathBuf,
    /// Write only the root filesystem, not the manifest
    #[arg(long)]
    pub rootfs_only: bool,
    /// Replace the directory's contents
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Debug, Args)]
pub struct ImageRenderArgs {
    /// Image ID (or unique prefix) or name[:version]
    pub image: String,
    /// Directory to write (missing or empty)
    #[arg(value_name = "DIR")]
    pub target: PathBuf,
    /// Replace the directory's contents
    #[arg(long)]
    pub overwrite: bool,
}
