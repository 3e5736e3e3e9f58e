//! The `stacd` command line: `serve`, `load` and `migrate`.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderValue;
use clap::{Args, Parser, Subcommand, ValueEnum};
use stacd::api::CatalogInfo;
use stacd::auth::{Scope, Tokens};
use stacd::load::{LoadOptions, load_paths, report};
use stacd::paging::TokenSigner;
use stacd::prepare::Checks;
use stacd::routes::{
    AppState, CachePolicy, ClientRateLimit, CorsOrigins, HttpOptions, Operations, parse_trusted_proxies,
};
use stacd::search::SearchLimits;
use stacd::store::{self, Backend, ConnectOptions, InsertMode, redact_url};
use stacd::{Error, Result};

/// A STAC API and OGC API Features catalog server for aerial and drone imagery.
#[derive(Parser)]
#[command(name = "stacd", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,

    /// Log format: `pretty` for people, `json` for log collectors (default: pretty on a terminal, else json).
    #[arg(long, global = true, env = "STACD_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Pretty,
    Json,
}

#[derive(Subcommand)]
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once at start-up, so its size does not matter"
)]
enum Command {
    /// Serve the catalog over HTTP, after loading PATHS (replacing existing items).
    Serve(ServeArgs),
    /// Load collections and items from files into the store.
    Load(LoadArgs),
    /// Apply database migrations and exit (serve and load also apply them).
    Migrate(StoreArgs),
    /// Manage the bearer tokens that enable writes.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Make a new random token, print it once, and append its hash to the tokens file.
    New(NewTokenArgs),
}

#[derive(Args)]
struct NewTokenArgs {
    /// Tokens file to append to (created when missing).
    #[arg(long, env = "STACD_TOKENS_FILE")]
    tokens_file: PathBuf,

    /// Scope of the token: write (and read), or read only.
    #[arg(long, value_enum, default_value = "write")]
    scope: TokenScope,

    /// Label for the token in logs, such as the pipeline that uses it.
    #[arg(long, default_value = "token")]
    name: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum TokenScope {
    Read,
    Write,
}

#[derive(Args)]
struct StoreArgs {
    /// Database URL: sqlite://PATH (created when missing) or postgres://USER[:PASSWORD]@HOST:PORT/DB.
    #[arg(long, env = "STACD_DATABASE_URL", default_value = "sqlite://stacd.sqlite")]
    database_url: String,
}

#[derive(Args)]
struct PoolArgs {
    /// PostgreSQL streaming replica for reads; writes, and the reads they depend on, use --database-url.
    #[arg(long, env = "STACD_READ_DATABASE_URL")]
    read_database_url: Option<String>,

    /// Maximum number of connections in each PostgreSQL pool (primary, and replica when set).
    #[arg(long, env = "STACD_POOL_MAX_CONNECTIONS", default_value_t = 16,
        value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pool_max_connections: u32,

    /// How long a request waits for a database connection before it gets 503, in seconds.
    #[arg(long, env = "STACD_POOL_ACQUIRE_TIMEOUT_SECONDS", default_value_t = 3.0)]
    pool_acquire_timeout_seconds: f64,
}

#[derive(Args)]
struct HttpArgs {
    /// Compress responses with gzip, Brotli or zstd when the client accepts it.
    #[arg(long, env = "STACD_COMPRESSION", default_value_t = true, action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new())]
    compression: bool,

    /// Smallest response body that is compressed, in bytes.
    #[arg(long, env = "STACD_COMPRESSION_MIN_BYTES", default_value_t = 1024)]
    compression_min_bytes: u16,

    /// Cache-Control of single items.
    #[arg(
        long,
        env = "STACD_CACHE_CONTROL_ITEMS",
        default_value = "public, max-age=300"
    )]
    cache_control_items: String,

    /// Cache-Control of the collection list and single collections.
    #[arg(
        long,
        env = "STACD_CACHE_CONTROL_COLLECTIONS",
        default_value = "public, max-age=60"
    )]
    cache_control_collections: String,

    /// Cache-Control of searches and item pages (GET only; POST searches are never cached).
    #[arg(
        long,
        env = "STACD_CACHE_CONTROL_SEARCHES",
        default_value = "public, max-age=10"
    )]
    cache_control_searches: String,

    /// Cache-Control of the landing page, conformance and API definition.
    #[arg(
        long,
        env = "STACD_CACHE_CONTROL_METADATA",
        default_value = "public, max-age=300"
    )]
    cache_control_metadata: String,

    /// Requests per second allowed to each client on average (0: no limit); more get 429.
    #[arg(long, env = "STACD_RATE_LIMIT_PER_SECOND", default_value_t = 0)]
    rate_limit_per_second: u32,

    /// Requests a client may send at once before its rate limit applies (default: twice the rate).
    #[arg(long, env = "STACD_RATE_LIMIT_BURST")]
    rate_limit_burst: Option<u32>,

    /// Proxies whose X-Forwarded-For names the client for rate limits: comma-separated IPs or CIDR blocks.
    #[arg(long, env = "STACD_TRUSTED_PROXIES", default_value = "")]
    trusted_proxies: String,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,

    /// Address and port to listen on.
    #[arg(long, env = "STACD_BIND", default_value = "127.0.0.1:7822")]
    bind: SocketAddr,

    /// Public base URL for links, such as https://example.com/stac; when unset,
    /// links follow the Forwarded, X-Forwarded-* and Host request headers.
    #[arg(long, env = "STACD_PUBLIC_URL")]
    public_url: Option<String>,

    /// Page size when a request gives no limit.
    #[arg(long, env = "STACD_DEFAULT_LIMIT", default_value_t = 10)]
    default_limit: usize,

    /// Largest page size; larger requests are clamped to it.
    #[arg(long, env = "STACD_MAX_LIMIT", default_value_t = 10_000)]
    max_limit: usize,

    /// numberMatched is exact up to this count and may be an estimate above it.
    #[arg(long, env = "STACD_COUNT_LIMIT", default_value_t = 10_000)]
    count_limit: u64,

    /// Maximum time a search may spend counting its matches, in milliseconds.
    /// When the count takes longer, the page has no numberMatched. 0 always
    /// waits for the count.
    #[arg(long, env = "STACD_COUNT_TIMEOUT_MS", default_value_t = 50)]
    count_timeout_ms: u64,

    /// Allowed CORS origins, comma-separated, or * for any.
    #[arg(long, env = "STACD_CORS_ORIGINS", default_value = "*")]
    cors_origins: String,

    /// Catalog title on the landing page.
    #[arg(long, env = "STACD_TITLE", default_value = "stacd catalog")]
    title: String,

    /// Catalog description on the landing page.
    #[arg(
        long,
        env = "STACD_DESCRIPTION",
        default_value = "Aerial and drone imagery catalog"
    )]
    description: String,

    /// Tokens file (see `stacd token new`); writes are enabled only with one.
    #[arg(long, env = "STACD_TOKENS_FILE")]
    tokens_file: Option<PathBuf>,

    /// Require a token for reads as well (read or write scope).
    #[arg(long, env = "STACD_PRIVATE_READS", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    private_reads: bool,

    /// Largest request body, in MiB; larger bodies get 413.
    #[arg(long, env = "STACD_BODY_LIMIT_MIB", default_value_t = 16)]
    body_limit_mib: usize,

    /// Accept item geometries that are not valid simple features (such as self-intersecting polygons).
    #[arg(long, env = "STACD_ALLOW_INVALID_GEOMETRY", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    allow_invalid_geometry: bool,

    /// Maximum number of items in one bulk write; more get 413.
    #[arg(long, env = "STACD_MAX_BULK_ITEMS", default_value_t = 10_000)]
    max_bulk_items: usize,

    /// Maximum time a request may take to produce its response, in seconds; beyond it, 503.
    #[arg(long, env = "STACD_REQUEST_TIMEOUT_SECONDS", default_value_t = 30.0)]
    request_timeout_seconds: f64,

    /// Most requests served at once; more get 503 at once, with Retry-After.
    #[arg(long, env = "STACD_MAX_CONCURRENT_REQUESTS", default_value_t = 512,
        value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrent_requests: u32,

    /// PostgreSQL cancels statements that run longer, in seconds (0: no limit). SQLite has none.
    #[arg(long, env = "STACD_STATEMENT_TIMEOUT_SECONDS", default_value_t = 30.0)]
    statement_timeout_seconds: f64,

    /// JSON file of property schemas that /queryables shows in place of the discovered ones:
    /// a JSON Schema with `properties`, or an object of property name to schema.
    #[arg(long, env = "STACD_QUERYABLES")]
    queryables: Option<PathBuf>,

    /// After SIGTERM or SIGINT, how long requests in flight may take to finish, in seconds.
    #[arg(long, env = "STACD_DRAIN_SECONDS", default_value_t = 10.0)]
    drain_seconds: f64,

    #[command(flatten)]
    pools: PoolArgs,

    #[command(flatten)]
    http: HttpArgs,

    /// Files or folders to load before serving.
    paths: Vec<PathBuf>,
}

#[derive(Args)]
struct LoadArgs {
    #[command(flatten)]
    store: StoreArgs,

    /// Replace items that already exist instead of rejecting them.
    #[arg(long)]
    upsert: bool,

    /// Accept item geometries that are not valid simple features (such as self-intersecting polygons).
    #[arg(long, env = "STACD_ALLOW_INVALID_GEOMETRY", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    allow_invalid_geometry: bool,

    /// Items written per transaction.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    batch_size: u32,

    /// Collection, item, item collection or NDJSON files, folders, or static catalogs.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = match cli.log_format {
        Some(LogFormat::Json) => true,
        Some(LogFormat::Pretty) => false,
        None => !std::io::stdout().is_terminal(),
    };
    // Telemetry starts before the runtime, because the trace exporter runs on threads of its own.
    let telemetry = stacd::telemetry::init(json);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::Load(args) => load(args).await,
            Command::Migrate(args) => open_store(&args).await.map(|_| ExitCode::SUCCESS),
            Command::Token(TokenCommand::New(args)) => new_token(&args),
        }
    });
    drop(runtime);
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(error = %e, "stacd failed");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown();
    code
}

/// Connects to the store and applies migrations.
async fn open_store(args: &StoreArgs) -> Result<Arc<dyn Backend>> {
    open_store_with(args, &ConnectOptions::default()).await
}

/// Connects to the store with connection settings and applies migrations.
async fn open_store_with(args: &StoreArgs, options: &ConnectOptions) -> Result<Arc<dyn Backend>> {
    let store = store::connect_with(&args.database_url, options).await?;
    store.migrate().await?;
    let version = store.version().await?;
    tracing::info!(db.backend = store.kind(), db.version = %version, db.url = %redact_url(&args.database_url), "store ready");
    Ok(store)
}

async fn load(args: LoadArgs) -> Result<ExitCode> {
    let store = open_store(&args.store).await?;
    let started = Instant::now();
    let options = LoadOptions {
        mode: if args.upsert {
            InsertMode::Upsert
        } else {
            InsertMode::Insert
        },
        batch_size: args.batch_size as usize,
        progress: std::io::stderr().is_terminal(),
        checks: Checks {
            allow_invalid_geometry: args.allow_invalid_geometry,
        },
    };
    let summary = load_paths(store.as_ref(), &args.paths, options).await?;
    report(&summary, started);
    Ok(if summary.rejected > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn new_token(args: &NewTokenArgs) -> Result<ExitCode> {
    let scope = match args.scope {
        TokenScope::Read => Scope::Read,
        TokenScope::Write => Scope::Write,
    };
    let token = stacd::auth::new_token(&args.tokens_file, scope, &args.name)?;
    eprintln!(
        "added a {} token to {}; it is shown only once:",
        match scope {
            Scope::Read => "read",
            Scope::Write => "write",
        },
        args.tokens_file.display()
    );
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: ServeArgs) -> Result<ExitCode> {
    if args.default_limit < 1 || args.max_limit < 1 || args.default_limit > args.max_limit {
        return Err(Error::InvalidParameter(format!(
            "--default-limit ({}) must be between 1 and --max-limit ({})",
            args.default_limit, args.max_limit
        )));
    }
    if let Some(url) = &args.public_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(Error::InvalidParameter(format!(
            "--public-url '{url}' must start with http:// or https://, such as https://example.com/stac"
        )));
    }
    let cors = parse_cors(&args.cors_origins)?;
    let tokens = args.tokens_file.as_deref().map(Tokens::load).transpose()?;
    if args.private_reads && tokens.as_ref().is_none_or(Tokens::is_empty) {
        return Err(Error::InvalidParameter(
            "--private-reads needs --tokens-file with at least one token".into(),
        ));
    }
    let statement_timeout = Some(seconds(
        args.statement_timeout_seconds,
        "--statement-timeout-seconds",
    )?)
    .filter(|t| !t.is_zero());
    let connect = ConnectOptions {
        statement_timeout,
        max_connections: args.pools.pool_max_connections,
        acquire_timeout: seconds(
            args.pools.pool_acquire_timeout_seconds,
            "--pool-acquire-timeout-seconds",
        )?,
        read_url: args.pools.read_database_url.clone(),
    };
    let http = http_options(&args.http, cors, tokens.clone())?;
    let queryables = args.queryables.as_deref().map(read_queryables).transpose()?;
    let store = open_store_with(&args.store, &connect).await?;
    if !args.paths.is_empty() {
        let started = Instant::now();
        let options = LoadOptions {
            mode: InsertMode::Upsert,
            batch_size: 1000,
            progress: std::io::stderr().is_terminal(),
            checks: Checks {
                allow_invalid_geometry: args.allow_invalid_geometry,
            },
        };
        let summary = load_paths(store.as_ref(), &args.paths, options).await?;
        report(&summary, started);
    }
    let state = Arc::new(AppState {
        signer: TokenSigner::new(store.secret().await?),
        store,
        limits: SearchLimits {
            default_limit: args.default_limit,
            max_limit: args.max_limit,
            count_limit: args.count_limit,
            count_timeout: (args.count_timeout_ms > 0).then(|| Duration::from_millis(args.count_timeout_ms)),
        },
        info: CatalogInfo {
            id: "stacd".into(),
            title: args.title,
            description: args.description,
        },
        public_url: args.public_url,
        tokens,
        private_reads: args.private_reads,
        body_limit: args.body_limit_mib.saturating_mul(1024 * 1024),
        max_bulk_items: args.max_bulk_items,
        checks: Checks {
            allow_invalid_geometry: args.allow_invalid_geometry,
        },
        queryables,
        operations: Arc::new(Operations::new(
            seconds(args.request_timeout_seconds, "--request-timeout-seconds")?,
            args.max_concurrent_requests as usize,
        )),
    });
    tracing::info!(
        writes = state.writes_enabled(),
        private_reads = state.private_reads,
        "access configured"
    );
    let drain = seconds(args.drain_seconds, "--drain-seconds")?;
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .map_err(|source| Error::Io {
            path: args.bind.to_string(),
            source,
        })?;
    tracing::info!(address = %args.bind, "listening");
    stacd::server::run(listener, state, http, shutdown_signal(), drain).await?;
    Ok(ExitCode::SUCCESS)
}

/// Converts a number of seconds from a flag into a duration.
fn seconds(value: f64, flag: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        Error::InvalidParameter(format!(
            "{flag} must be a non-negative number of seconds, got {value}"
        ))
    })
}

/// Reads the operator's queryables file: a JSON Schema with `properties`, or
/// an object of property name to schema.
fn read_queryables(path: &std::path::Path) -> Result<serde_json::Map<String, serde_json::Value>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    let invalid =
        |reason: String| Error::InvalidParameter(format!("--queryables {}: {reason}", path.display()));
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| invalid(format!("invalid JSON: {e}")))?;
    let serde_json::Value::Object(mut object) = value else {
        return Err(invalid("expected a JSON object".into()));
    };
    if let Some(serde_json::Value::Object(properties)) = object.remove("properties") {
        return Ok(properties);
    }
    Ok(object)
}

/// Builds the HTTP options from the flags: CORS, caching, compression and rate limits.
fn http_options(args: &HttpArgs, cors: CorsOrigins, tokens: Option<Tokens>) -> Result<HttpOptions> {
    let header = |value: &str, flag: &str| {
        HeaderValue::from_str(value.trim()).map_err(|_| {
            Error::InvalidParameter(format!(
                "{flag} '{value}' is not a valid header value, such as 'public, max-age=60'"
            ))
        })
    };
    let cache = CachePolicy {
        items: header(&args.cache_control_items, "--cache-control-items")?,
        collections: header(&args.cache_control_collections, "--cache-control-collections")?,
        searches: header(&args.cache_control_searches, "--cache-control-searches")?,
        metadata: header(&args.cache_control_metadata, "--cache-control-metadata")?,
        ..CachePolicy::default()
    };
    let trusted_proxies = parse_trusted_proxies(&args.trusted_proxies)?;
    let rate_limit = match NonZeroU32::new(args.rate_limit_per_second) {
        None => None,
        Some(rate) => {
            let burst = args.rate_limit_burst.unwrap_or(rate.get().saturating_mul(2));
            let burst = NonZeroU32::new(burst)
                .ok_or_else(|| Error::InvalidParameter("--rate-limit-burst must be at least 1".into()))?;
            tracing::info!(
                per_second = rate.get(),
                burst = burst.get(),
                "per-client rate limit on"
            );
            Some(Arc::new(ClientRateLimit::new(
                rate,
                burst,
                trusted_proxies,
                tokens,
            )))
        }
    };
    Ok(HttpOptions {
        cors,
        cache,
        compression_min_bytes: args.compression.then_some(args.compression_min_bytes),
        rate_limit,
    })
}

fn parse_cors(text: &str) -> Result<CorsOrigins> {
    if text.trim() == "*" {
        return Ok(CorsOrigins::Any);
    }
    let origins = text
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| {
            if !(o.starts_with("http://") || o.starts_with("https://")) {
                return Err(Error::InvalidParameter(format!(
                    "invalid CORS origin '{o}' in --cors-origins: expected an origin such as https://example.com"
                )));
            }
            HeaderValue::from_str(o)
                .map_err(|_| Error::InvalidParameter(format!("invalid CORS origin '{o}' in --cors-origins")))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(CorsOrigins::List(origins))
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
