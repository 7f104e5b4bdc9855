//! The command line, as clap sees it.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use rkt_common::insecure::InsecureOptions;

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
    /// Local configuration directory (trusted keys are added here)
    #[arg(long, global = true, default_value = rkt_image::trust::DEFAULT_LOCAL_CONFIG, value_name = "DIR")]
    pub local_config: PathBuf,
    /// A user's configuration directory (auth.d/), read after --local-config, whose
    /// entries win over the local and system ones
    #[arg(long, global = true, value_name = "DIR")]
    pub user_config: Option<PathBuf>,
    /// System (vendor) configuration directory, read but never changed
    #[arg(long, global = true, default_value = rkt_image::trust::DEFAULT_SYSTEM_CONFIG, value_name = "DIR")]
    pub system_config: PathBuf,
    /// The most an image may hold once decompressed, e.g. 512M or 64G (K, M, G, T count in
    /// powers of 1024); checked as ACIs are fetched and as OCI images are unpacked at first
    /// use. Default: 32G, and past 1G no more than 100 times the image's compressed size
    #[arg(long, global = true, env = "RKT_MAX_IMAGE_SIZE", value_name = "SIZE")]
    pub max_image_size: Option<rkt_store::aci::ImageSizeLimit>,
}

impl Cli {
    /// Whether the global or `run`/`prepare` option `--name` takes a value.
    pub fn option_takes_value(name: &str) -> bool {
        use clap::CommandFactory;
        let cli = Cli::command();
        let mut args: Vec<&clap::Arg> = cli.get_arguments().collect();
        for sub in ["run", "prepare"] {
            if let Some(sub) = cli.find_subcommand(sub) {
                args.extend(sub.get_arguments());
            }
        }
        args.iter()
            .any(|a| a.get_long() == Some(name) && a.get_action().takes_values())
    }
}

impl GlobalArgs {
    /// The image store under --dir, with --max-image-size.
    pub fn store(&self) -> Result<rkt_store::Store, rkt_store::StoreError> {
        Ok(rkt_store::Store::open(&self.dir)?.with_size_limit(self.size_limit()))
    }

    /// --max-image-size, or rkt's default.
    pub fn size_limit(&self) -> rkt_store::aci::ImageSizeLimit {
        self.max_image_size.unwrap_or_default()
    }

    /// The trust store over --local-config and --system-config.
    pub fn trust_store(&self) -> rkt_image::trust::TrustStore {
        rkt_image::trust::TrustStore::new(&self.local_config, &self.system_config)
    }

    /// The credentials of auth.d under --system-config, --local-config and --user-config.
    pub fn auth_config(&self) -> Result<rkt_image::auth::AuthConfig, rkt_image::auth::AuthError> {
        rkt_image::auth::AuthConfig::load_with_user(
            &self.local_config,
            &self.system_config,
            self.user_config.as_deref(),
        )
    }

    /// How network fetches may talk to servers (`--insecure-options=http,tls`).
    pub fn http_policy(&self) -> rkt_image::http::HttpPolicy {
        use rkt_common::insecure::Insecure;
        rkt_image::http::HttpPolicy {
            allow_http: self.insecure_options.allows(Insecure::Http),
            skip_tls_verify: self.insecure_options.allows(Insecure::Tls),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch images (ACI files, OCI/Docker images) into the store and print their image IDs
    #[command(after_help = "\
Examples:
  rkt trust --prefix example.com/app && rkt fetch example.com/app:1.0
  rkt fetch ./app.aci                     (its signature ./app.aci.asc beside it)
  rkt fetch https://example.com/app-1.0.aci
  rkt --dir /srv/rkt --insecure-options=image fetch a.aci b.aci.xz   (unsigned)
  rkt fetch docker://registry.example.com/app:1.0
  rkt --insecure-options=http fetch docker://127.0.0.1:5000/app@sha256:…
  rkt fetch oci-archive:app.tar  docker-archive:saved.tar  ./oci-layout-dir[:TAG]

A name is found by appc discovery: rkt reads the ac-discovery meta tags of
https://NAME?ac-discovery=1 (then of each parent path) and checks that the image it gets has
the name and labels asked for. Downloads are cached by URL (ETag, Last-Modified, max-age).
Plain http:// needs --insecure-options=http; a server whose TLS certificate is not signed by a
trusted CA needs its CA in SSL_CERT_FILE (or --insecure-options=tls).

OCI and Docker images (docker://, oci-archive:, docker-archive:, OCI layout directories) are
checked against their digests; plain-http registries need --insecure-options=http. Their
layers are stored as fetched and unpacked at the image's first run (or `rkt image render`).
Registry credentials come from auth.d files under --local-config and --system-config.

Images are verified by default: an ACI needs a detached signature (FILE.asc next to a file,
URL.asc beside a download, or the one discovery names), a registry image a simple-signing
(lookaside store, registries.d) or sigstore signature, made by a key trusted for it (see rkt
trust); archives and layouts, which carry no signature, need a trust policy that accepts them
(rkt trust --prefix docker://NAME --policy=insecureAcceptAnything). rkt refuses otherwise,
unless --insecure-options=image, and says on stderr which key or policy accepted an image.
Fetching an image that is already stored prints its ID and stores nothing new.")]
    Fetch(FetchArgs),
    /// Work with the images in the store
    #[command(subcommand)]
    Image(ImageCommand),
    /// Run a pod from images (IDs, names or ACI files); exits with the app's status
    Run(RunArgs),
    /// Run a pod made by `rkt prepare`
    RunPrepared(RunPreparedArgs),
    /// Run a command in a running pod, in an app's root filesystem
    Enter(EnterArgs),
    /// Stop running pods (gracefully: apps get SIGTERM; --force kills them)
    Stop(StopArgs),
    /// Prepare a pod from images (IDs, names or ACI files) and print its UUID
    Prepare(PrepareArgs),
    /// List pods, one row per app
    List(ListArgs),
    /// Print the state of a pod
    Status(StatusArgs),
    /// Print the pod manifest of a pod
    CatManifest(CatPodManifestArgs),
    /// Remove pods that are not running, with all their files and mounts
    Rm(PodsArgs),
    /// Write an app of an exited pod as an ACI: its image's manifest and the root filesystem
    /// as the app left it
    Export(ExportArgs),
    /// Mark exited and abandoned pods as garbage and delete old garbage
    Gc(GcArgs),
    /// Trust OpenPGP keys to sign images, list or remove them
    #[command(after_help = TRUST_HELP)]
    Trust(crate::commands::trust::TrustArgs),
    /// Serve the appc metadata service to pods run with --mds-register
    MetadataService(crate::commands::metadata::MetadataServiceArgs),
    /// Add, start, stop, remove and look at the apps of a running mutable pod
    #[command(subcommand)]
    App(AppCommand),
    /// Print the configuration rkt reads (credentials, paths) as JSON, in the original's
    /// format: {"stage0": [entries]}
    Config(ConfigArgs),
    /// Print the version of rkt and of the App Container spec it implements
    Version,
    /// Print shell completions (bash, zsh, fish, elvish, powershell)
    Completion(crate::commands::completion::CompletionArgs),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Pod UUID or unique prefix (an exited pod)
    pub uuid: String,
    /// The ACI file to write (FILE.aci)
    #[arg(value_name = "FILE.aci")]
    pub output: PathBuf,
    /// The app to export (needed when the pod has several)
    #[arg(long, value_name = "NAME")]
    pub app: Option<String>,
    /// Replace the file if it exists
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Indent the JSON (with tabs, as the original did)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub pretty_print: bool,
}

/// `rkt app ...`: the apps of a running pod started with `rkt run --mutable`.
#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Add an app to a running mutable pod (prepared, not started: see `rkt app start`)
    #[command(after_help = crate::app_args::HELP)]
    Add(AppAddArgs),
    /// Start an app of a running mutable pod
    Start(AppArgs),
    /// Stop an app of a running mutable pod (SIGTERM, then SIGKILL after its stop timeout)
    Stop(AppArgs),
    /// Remove a stopped app from a running mutable pod, with its root filesystem
    Rm(AppArgs),
    /// List the apps of a pod with their states
    List(AppListArgs),
    /// Print the state of one app of a pod (state, pid, exit code, times)
    Status(AppStatusArgs),
    /// Run a command in a running pod, in an app's root filesystem (as `rkt enter`)
    Exec(EnterArgs),
    /// Run an empty mutable pod that apps are added to with `rkt app add` (the original's
    /// name for `rkt run --mutable` without images); stays in the foreground until stopped
    Sandbox(AppSandboxArgs),
}

/// `rkt app sandbox`: the original's options for an empty pod.
#[derive(Debug, Args)]
pub struct AppSandboxArgs {
    /// Also write the pod's UUID to this file
    #[arg(long, value_name = "FILE")]
    pub uuid_file_save: Option<PathBuf>,
    /// The pod's network (see `rkt run --help`)
    #[arg(long, value_name = "host|none|default|NAME", default_value = "default")]
    pub net: String,
    /// Copy each app's root filesystem instead of mounting an overlay
    #[arg(long)]
    pub no_overlay: bool,
    /// A name server for the apps' /etc/resolv.conf (repeatable), or "host"
    #[arg(long, value_name = "IP|host")]
    pub dns: Vec<String>,
    /// A search domain for the apps' /etc/resolv.conf (repeatable)
    #[arg(long, value_name = "DOMAIN")]
    pub dns_search: Vec<String>,
    /// A resolver option for the apps' /etc/resolv.conf (repeatable)
    #[arg(long, value_name = "OPTION")]
    pub dns_opt: Vec<String>,
    /// The pod's hostname [default: rkt-<uuid>]
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// An annotation of the pod, KEY=VALUE (repeatable): the pod manifest's userAnnotations
    #[arg(long, value_name = "KEY=VALUE")]
    pub user_annotation: Vec<String>,
    /// A label of the pod, KEY=VALUE (repeatable): the pod manifest's userLabels
    #[arg(long, value_name = "KEY=VALUE")]
    pub user_label: Vec<String>,
}

impl AppSandboxArgs {
    /// The `rkt run --mutable` these options make.
    pub fn run_args(&self) -> RunArgs {
        RunArgs {
            spec: PodSpecArgs {
                images: Vec::new(),
                mutable: true,
                pod_manifest: None,
                app_overrides: Vec::new(),
                inherit_env: false,
                set_env: Vec::new(),
                set_env_file: Vec::new(),
                volume: Vec::new(),
                mount: Vec::new(),
                pull_policy: PullPolicyArg::New,
                no_store: false,
                store_only: false,
                uuid_file_save: self.uuid_file_save.clone(),
                no_overlay: self.no_overlay,
                private_users: false,
                net: self.net.clone(),
                port: Vec::new(),
                sysctl: Vec::new(),
                hostname: self.hostname.clone(),
                dns: self.dns.clone(),
                dns_search: self.dns_search.clone(),
                dns_opt: self.dns_opt.clone(),
                hosts_entry: Vec::new(),
                mds_register: false,
                user_annotation: self.user_annotation.clone(),
                user_label: self.user_label.clone(),
            },
            interactive: false,
        }
    }
}

#[derive(Debug, Args)]
pub struct AppAddArgs {
    /// Pod UUID or unique prefix
    pub uuid: String,
    /// Image: ID (or unique prefix), ACI file, https:// URL or name[:version], followed by
    /// its per-app options (--name, --exec, --user, ...) and `-- ARGS`
    pub image: String,
    /// The image's per-app options, taken out of the command line before clap (app_args).
    #[arg(skip)]
    pub app_overrides: Box<rkt_pod::AppOverrides>,
    /// When to use the network for an image given by name or URL
    #[arg(long, value_enum, default_value = "new")]
    pub pull_policy: PullPolicyArg,
}

/// One app of one pod.
#[derive(Debug, Args)]
pub struct AppArgs {
    /// Pod UUID or unique prefix
    pub uuid: String,
    /// The app's name (see `rkt app list`)
    #[arg(long, value_name = "NAME")]
    pub app: String,
}

#[derive(Debug, Args)]
pub struct AppListArgs {
    /// Pod UUID or unique prefix
    pub uuid: String,
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Leave out the header line
    #[arg(long)]
    pub no_legend: bool,
}

#[derive(Debug, Args)]
pub struct AppStatusArgs {
    /// Pod UUID or unique prefix
    pub uuid: String,
    /// The app's name (see `rkt app list`)
    #[arg(long, value_name = "NAME")]
    pub app: String,
    /// Output format: key=value lines (table) or JSON
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

const TRUST_HELP: &str = "\
Examples:
  rkt trust --prefix example.com/app ./example-app.asc
  rkt trust --prefix docker://registry.example.com/team ./signer.asc ./cosign.pub
  rkt trust --prefix docker://registry.example.com/mirror --policy=insecureAcceptAnything
  rkt trust --root ./vendor-key.asc
  rkt trust --list --format=json
  rkt trust --remove 06a7a689027efd7521cba38fb3d07a43619fbdcf

A key trusted for a prefix vouches for images named PREFIX or PREFIX/... (docker://HOST/PATH:
registry images, and archives naming them); a root key vouches for every image. OpenPGP keys
check ACIs and simple signing; PEM public keys (cosign.pub) are sigstore keys. A --policy says
which of signedBy, sigstoreSigned, insecureAcceptAnything (unsigned too) are enough for the
prefix; without one, unsigned images are refused. Keys are stored in --local-config (default /etc/rkt) under
trustedkeys/{root.d,prefix.d/<prefix>}/<fingerprint>; keys in --system-config (default
/usr/lib/rkt) are read too. Before a key is added, rkt shows its fingerprint and user IDs and
asks; compare the fingerprint with one you got from the publisher another way. Scripts, whose
standard input is not a terminal, must pass --skip-fingerprint-review.";

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// ACI files (.aci; gzip, bzip2, xz or uncompressed), https:// URLs of ACIs, image names
    /// found by appc discovery (NAME[:VERSION][,LABEL=VALUE...]), docker://HOST/REPO[:TAG|@DIGEST],
    /// oci-archive:PATH, docker-archive:PATH or OCI layout directories
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
    /// When to use the network: new (only for images not stored yet), update (ask the server
    /// for a newer image; HTTP caching applies), never (stored images only)
    #[arg(long, value_enum, default_value = "update")]
    pub pull_policy: PullPolicyArg,
    /// The original's spelling of --pull-policy=update: fetch even if the image is stored
    #[arg(long, conflicts_with = "store_only")]
    pub no_store: bool,
    /// The original's spelling of --pull-policy=never: use stored images only
    #[arg(long)]
    pub store_only: bool,
}

impl FetchArgs {
    /// --pull-policy, or what --no-store or --store-only say.
    pub fn pull_policy(&self) -> PullPolicyArg {
        PullPolicyArg::with_store_flags(self.pull_policy, self.no_store, self.store_only)
    }
}

impl PodSpecArgs {
    /// --pull-policy, or what --no-store or --store-only say.
    pub fn pull_policy(&self) -> PullPolicyArg {
        PullPolicyArg::with_store_flags(self.pull_policy, self.no_store, self.store_only)
    }
}

impl PullPolicyArg {
    /// The policy the original's `--no-store` (fetch again) and `--store-only` (never fetch)
    /// name, else `policy`.
    fn with_store_flags(policy: PullPolicyArg, no_store: bool, store_only: bool) -> PullPolicyArg {
        match (no_store, store_only) {
            (true, _) => PullPolicyArg::Update,
            (false, true) => PullPolicyArg::Never,
            (false, false) => policy,
        }
    }
}

/// `--pull-policy`: when a remote image is looked up on the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PullPolicyArg {
    /// Use the stored image if there is one; fetch only what is missing
    New,
    /// Ask the server for a newer image (HTTP caching applies)
    Update,
    /// Never touch the network; fail if the image is not stored
    Never,
}

impl From<PullPolicyArg> for rkt_image::fetch::PullPolicy {
    fn from(arg: PullPolicyArg) -> Self {
        match arg {
            PullPolicyArg::New => rkt_image::fetch::PullPolicy::New,
            PullPolicyArg::Update => rkt_image::fetch::PullPolicy::Update,
            PullPolicyArg::Never => rkt_image::fetch::PullPolicy::Never,
        }
    }
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
    /// Write the root filesystem an app of the image sees (DIR/rootfs) and the image's
    /// manifest (DIR/manifest) into a directory
    Render(ImageRenderArgs),
    /// Check that stored images still hash to their IDs (all images if none are given)
    Verify(ImageVerifyArgs),
    /// Remove images no pod uses that were last used before the grace period, and unused layers
    Gc(ImageGcArgs),
}

#[derive(Debug, Args)]
pub struct ImageVerifyArgs {
    /// Image IDs (or unique prefixes) or names[:version]; all stored images if none
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImageGcArgs {
    /// Images used more recently than this are kept, e.g. 24h, 30m, 0s
    #[arg(long, default_value = "24h", value_name = "DURATION")]
    pub grace_period: DurationArg,
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

/// A column of `rkt image list` (the original's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImageField {
    Id,
    Name,
    Size,
    #[value(name = "importtime")]
    ImportTime,
    #[value(name = "lastused")]
    LastUsed,
    /// Why the image was let in: the key that signed it, a policy, or insecure.
    Trusted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortOrder {
    Asc,
    Desc,
}

#[derive(Debug, Args)]
pub struct ImageListArgs {
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Columns to show, comma-separated: id, name, size, importtime, lastused, trusted
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "id,name,size,importtime,lastused,trusted"
    )]
    pub fields: Vec<ImageField>,
    /// Sort by these fields, comma-separated: name, importtime, lastused, size
    #[arg(long, value_delimiter = ',', default_value = "importtime")]
    pub sort: Vec<ImageField>,
    /// Sort order: asc or desc
    #[arg(long, value_enum, default_value = "asc")]
    pub order: SortOrder,
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
    /// Write only the root filesystem, into DIR itself
    #[arg(long)]
    pub rootfs_only: bool,
    /// Replace the directory's contents
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Debug, Args)]
pub struct PrepareArgs {
    #[command(flatten)]
    pub spec: PodSpecArgs,
}

/// What makes a pod: shared by `prepare` and `run`.
#[derive(Debug, Args)]
pub struct PodSpecArgs {
    /// Images: ID (or unique prefix), an ACI file or https:// URL, or a name[:version]
    /// (from the store, else found by appc discovery), each followed by its per-app options
    /// (--user, --exec, --memory, ...) and `-- ARGS ---`; pod options go before the first image
    #[arg(required_unless_present_any = ["mutable", "pod_manifest"], value_name = "IMAGE")]
    pub images: Vec<String>,
    /// Keep the pod up when its apps end, until `rkt stop`, and let `rkt app add/start/stop/rm`
    /// change its apps while it runs (with no image: an empty pod waiting for apps)
    #[arg(long)]
    pub mutable: bool,
    /// Run the pod this appc pod manifest describes (apps, volumes, annotations, isolators)
    /// instead of images given here; its images must be in the store (by ID or by name)
    #[arg(long, value_name = "FILE")]
    pub pod_manifest: Option<PathBuf>,
    /// Each image's per-app options, taken out of the command line before clap (app_args).
    #[arg(skip)]
    pub app_overrides: Vec<rkt_pod::AppOverrides>,
    /// The pod's userAnnotations and userLabels (KEY=VALUE), from `rkt app sandbox`.
    #[arg(skip)]
    pub user_annotation: Vec<String>,
    #[arg(skip)]
    pub user_label: Vec<String>,
    /// Give every app the environment of rkt itself (under the image's own variables)
    #[arg(long)]
    pub inherit_env: bool,
    /// Set an environment variable in every app (over the image's), NAME=VALUE
    #[arg(long, value_name = "NAME=VALUE")]
    pub set_env: Vec<String>,
    /// Set the NAME=VALUE lines of a file in every app's environment (under --set-env)
    #[arg(long, value_name = "FILE")]
    pub set_env_file: Vec<PathBuf>,
    /// A pod volume (repeatable): NAME,kind=host,source=PATH[,readOnly=BOOL][,recursive=BOOL]
    /// binds a host path; NAME,kind=empty[,mode=0755][,uid=N][,gid=N] is a directory of the
    /// pod's, shared by the apps that mount it
    #[arg(long, value_name = "NAME,kind=host|empty,...")]
    pub volume: Vec<String>,
    /// Mount a volume into every app (repeatable; after an image: into that app only)
    #[arg(long, value_name = "volume=NAME,target=PATH")]
    pub mount: Vec<String>,
    /// When to use the network for images given by name or URL: new (only if not stored),
    /// update (ask the server for a newer image), never (stored images only)
    #[arg(long, value_enum, default_value = "new")]
    pub pull_policy: PullPolicyArg,
    /// The original's spelling of --pull-policy=update
    #[arg(long, conflicts_with = "store_only")]
    pub no_store: bool,
    /// The original's spelling of --pull-policy=never
    #[arg(long)]
    pub store_only: bool,
    /// Also write the pod's UUID to this file
    #[arg(long, value_name = "FILE")]
    pub uuid_file_save: Option<PathBuf>,
    /// Copy each app's root filesystem instead of mounting an overlay (for filesystems
    /// without overlay support; slower to start, and uses more space)
    #[arg(long)]
    pub no_overlay: bool,
    /// Run the pod in a user namespace of its own (systemd-nspawn --private-users=pick): root
    /// in the pod is an unprivileged user on the host
    #[arg(long)]
    pub private_users: bool,
    /// The pod's network: host (the host's network namespace), none (a namespace of its own
    /// with only loopback), default (a namespace of its own on 172.16.28.0/24 through a ptp
    /// link, masqueraded, with --port forwarding; built in unless net.d names one so), or
    /// NAME: the CNI network of that name in --local-config's net.d/*.conf or *.conflist
    /// (plugins from /usr/lib/cni)
    #[arg(long, value_name = "host|none|default|NAME", default_value = "default")]
    pub net: String,
    /// Forward a host port to the port NAME an app's image declares (repeatable); only with a
    /// network of the pod's own (--net=default or a CNI network with the portmap plugin)
    #[arg(long, value_name = "NAME:[HOSTIP:]HOSTPORT")]
    pub port: Vec<String>,
    /// Set a kernel parameter of the pod's own network namespace before the apps start, e.g.
    /// net.ipv4.ip_unprivileged_port_start=0 (repeatable; net.* only; not with --net=host)
    #[arg(long, value_name = "NAME=VALUE")]
    pub sysctl: Vec<String>,
    /// The pod's hostname [default: rkt-<uuid>]
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// A name server for the apps' /etc/resolv.conf (repeatable), or "host" to copy the
    /// host's resolv.conf; without any --dns* flag the image's own file stays
    #[arg(long, value_name = "IP|host")]
    pub dns: Vec<String>,
    /// A search domain for the apps' /etc/resolv.conf (repeatable)
    #[arg(long, value_name = "DOMAIN")]
    pub dns_search: Vec<String>,
    /// A resolver option for the apps' /etc/resolv.conf, e.g. ndots:2 (repeatable)
    #[arg(long, value_name = "OPTION")]
    pub dns_opt: Vec<String>,
    /// An /etc/hosts entry for the apps (repeatable), or "host" to start from the host's
    /// /etc/hosts; without any, an image without /etc/hosts gets localhost and the hostname
    #[arg(long, value_name = "IP=HOSTNAME|host")]
    pub hosts_entry: Vec<String>,
    /// Register the pod with the metadata service (`rkt metadata-service`, which must be
    /// running or socket-activatable on /run/rkt/metadata-svc.sock): its apps get
    /// AC_METADATA_URL=http://<host>:18112/<token>
    #[arg(long)]
    pub mds_register: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "\
The pod runs as the systemd unit rkt-<uuid>.service in machine.slice and is registered with
machined: see it with `machinectl list`, read its apps' output with `journalctl -M <machine>`
while it runs or `journalctl -m -t <app>` afterwards. rkt run exits with the first non-zero
exit status of the pod's apps, or 254 for its own failures. Under a unit file
(ExecStart=rkt run ...), stopping that unit stops the pod.

Per-app options follow the image they are for: --name, --exec, --user, --group,
--supplementary-gids=1,2, --working-dir, --set-env=NAME=VALUE, --set-env-file=FILE,
--readonly-rootfs, --memory=64M, --cpu=500m, --cpu-shares=N, --caps-retain=CAP_A,CAP_B,
--caps-remove=..., --seccomp=mode=retain|remove[,errno=EPERM],SYSCALL,..., --oom-score-adj=N;
the app's arguments follow `--` and end at `---`:
  rkt run --set-env=MODE=test img1 --user=1000 --memory=64M -- --verbose --- img2 --exec=/bin/sh")]
pub struct RunArgs {
    #[command(flatten)]
    pub spec: PodSpecArgs,
    /// Attach this terminal to the pod's app (a pod of one app; stdin must be a terminal)
    #[arg(long)]
    pub interactive: bool,
}

/// `rkt run-prepared`: the pod, and the options the original let it change at run time.
#[derive(Debug, Args)]
pub struct RunPreparedArgs {
    #[command(flatten)]
    pub pod: PodArgs,
    /// Attach this terminal to the pod's app (a pod of one app; stdin must be a terminal)
    #[arg(long)]
    pub interactive: bool,
    /// The pod's hostname, instead of the one it was prepared with
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// Name servers for the apps' /etc/resolv.conf, instead of those it was prepared with
    #[arg(long, value_name = "IP|host")]
    pub dns: Vec<String>,
    /// Search domains for the apps' /etc/resolv.conf (with --dns)
    #[arg(long, value_name = "DOMAIN")]
    pub dns_search: Vec<String>,
    /// Resolver options for the apps' /etc/resolv.conf (with --dns)
    #[arg(long, value_name = "OPTION")]
    pub dns_opt: Vec<String>,
    /// /etc/hosts entries for the apps, instead of those it was prepared with
    #[arg(long, value_name = "IP=HOSTNAME|host")]
    pub hosts_entry: Vec<String>,
}

/// `rkt cat-manifest`: a pod's manifest.
#[derive(Debug, Args)]
pub struct CatPodManifestArgs {
    #[command(flatten)]
    pub pod: PodArgs,
    /// Indent the JSON; with --pretty-print=false it is printed on one line
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub pretty_print: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Show full UUIDs and exact times
    #[arg(long)]
    pub full: bool,
    /// Leave out the header line
    #[arg(long)]
    pub no_legend: bool,
}

/// One pod, by UUID (a unique prefix is enough) or by a file holding it.
#[derive(Debug, Args)]
pub struct PodArgs {
    /// Pod UUID or unique prefix
    #[arg(required_unless_present = "uuid_file")]
    pub uuid: Option<String>,
    /// Read the UUID from this file (as written by --uuid-file-save)
    #[arg(long, value_name = "FILE", conflicts_with = "uuid")]
    pub uuid_file: Option<PathBuf>,
}

impl PodArgs {
    pub fn uuid(&self) -> anyhow::Result<String> {
        match (&self.uuid, &self.uuid_file) {
            (Some(uuid), _) => Ok(uuid.clone()),
            (None, Some(file)) => read_uuid_file(file),
            (None, None) => anyhow::bail!("no pod given"),
        }
    }
}

/// Several pods, by UUID (unique prefixes) or by a file holding one.
#[derive(Debug, Args)]
pub struct PodsArgs {
    /// Pod UUIDs or unique prefixes
    #[arg(required_unless_present = "uuid_file")]
    pub uuids: Vec<String>,
    /// Read the UUID from this file (as written by --uuid-file-save)
    #[arg(long, value_name = "FILE")]
    pub uuid_file: Option<PathBuf>,
}

impl PodsArgs {
    pub fn uuids(&self) -> anyhow::Result<Vec<String>> {
        let mut uuids = self.uuids.clone();
        if let Some(file) = &self.uuid_file {
            uuids.push(read_uuid_file(file)?);
        }
        Ok(uuids)
    }
}

/// The UUID `--uuid-file-save` wrote into `file`. Anything else the file holds is not quoted
/// back (it may be any file: `--uuid-file=/etc/shadow`).
fn read_uuid_file(file: &std::path::Path) -> anyhow::Result<String> {
    let not_a_uuid = || {
        anyhow::anyhow!(
            "{} does not hold a pod UUID (as --uuid-file-save writes it)",
            file.display()
        )
    };
    // A UUID and a newline; a little more for stray whitespace.
    let text = crate::input::read_limited_text(file, 256).map_err(|e| match e.kind() {
        std::io::ErrorKind::Other | std::io::ErrorKind::InvalidData => not_a_uuid(),
        _ => anyhow::anyhow!("reading UUID file {}: {e}", file.display()),
    })?;
    let uuid = text.trim();
    let shape = uuid.len() == 36
        && uuid.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    if !shape {
        return Err(not_a_uuid());
    }
    Ok(uuid.to_owned())
}

#[derive(Debug, Args)]
pub struct StopArgs {
    #[command(flatten)]
    pub pods: PodsArgs,
    /// Kill the pod at once (SIGKILL) instead of shutting it down
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub pod: PodArgs,
    /// Output format: key=value lines (table) or JSON
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Wait until the pod has exited; with a duration (--wait=30s), at most that long
    /// (true: forever, false: not at all)
    #[arg(long, value_name = "DURATION", num_args = 0..=1, require_equals = true,
          default_missing_value = "forever")]
    pub wait: Option<String>,
    /// Wait until the pod is ready (booted, its apps started and notify apps ready); with a
    /// duration (--wait-ready=30s), at most that long (true: forever, false: not at all)
    #[arg(long, value_name = "DURATION", num_args = 0..=1, require_equals = true,
          default_missing_value = "forever")]
    pub wait_ready: Option<String>,
}

#[derive(Debug, Args)]
pub struct EnterArgs {
    /// Pod UUID or unique prefix
    pub uuid: String,
    /// The app whose root filesystem to enter (needed when the pod has several)
    #[arg(long)]
    pub app: Option<String>,
    /// Command to run, and its arguments (default: /bin/sh); everything after the UUID's
    /// first following word is the command's, with or without `--` before it
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// How long exited pods are kept after being marked, e.g. 30m, 1h30m, 0s
    #[arg(long, default_value = "30m", value_name = "DURATION")]
    pub grace_period: DurationArg,
    /// Prepared pods older than this are removed
    #[arg(long, default_value = "24h", value_name = "DURATION")]
    pub expire_prepared: DurationArg,
    /// Only mark pods as garbage; delete nothing
    #[arg(long)]
    pub mark_only: bool,
}

/// A duration written as numbers with units: `90s`, `30m`, `1h30m`, `2d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationArg(pub Duration);

impl FromStr for DurationArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "{} is not a duration like 30s, 10m, 1h30m or 2d",
                rkt_common::excerpt::excerpt(s)
            )
        };
        let mut total = 0u64;
        let mut number = String::new();
        for c in s.trim().chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let unit = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86400,
                _ => return Err(bad()),
            };
            let n: u64 = number.parse().map_err(|_| bad())?;
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(bad)?;
            number.clear();
        }
        if !number.is_empty() || s.trim().is_empty() {
            return Err(bad());
        }
        Ok(DurationArg(Duration::from_secs(total)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        let secs = |s: &str| s.parse::<DurationArg>().map(|d| d.0.as_secs());
        assert_eq!(secs("0s"), Ok(0));
        assert_eq!(secs("30m"), Ok(1800));
        assert_eq!(secs("1h30m"), Ok(5400));
        assert_eq!(secs("2d"), Ok(172_800));
        assert!(secs("30").is_err() && secs("m").is_err() && secs("5x").is_err());
    }
}
