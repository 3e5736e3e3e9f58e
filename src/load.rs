//! Loading STAC files into a store: collections, items, item collections,
//! newline-delimited items, directories and static catalogs.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Instant;

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::prepare::{Checks, PreparedItem, prepare_collection, prepare_item_with};
use crate::store::{Backend, InsertMode};

/// Counts and error messages of one load.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoadSummary {
    /// Collections written.
    pub collections: u64,
    /// Items written.
    pub items: u64,
    /// Items not written because their batch was rejected.
    pub rejected: u64,
    /// One message per rejected batch or bad record.
    pub errors: Vec<String>,
}

/// Options of a load.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// Replace existing items instead of rejecting duplicates.
    pub mode: InsertMode,
    /// Items per transaction.
    pub batch_size: usize,
    /// Show a progress bar (only drawn when stderr is a terminal).
    pub progress: bool,
    /// Checks on items, the same as the API's.
    pub checks: Checks,
}

/// One item record waiting for its batch, with where it came from.
struct Record {
    item: PreparedItem,
    origin: String,
}

/// A source of items found while walking the paths.
struct ItemSource {
    path: PathBuf,
    /// Collection that items without a `collection` member belong to.
    collection: Option<String>,
}

struct Loader<'a> {
    store: &'a dyn Backend,
    options: LoadOptions,
    summary: LoadSummary,
    batch: Vec<Record>,
    /// Bad records read since the last flush. They take a place in the batch,
    /// and the batch is rejected at the next flush when there is any.
    bad_in_batch: usize,
    /// Origin of the first record of the current batch, good or bad.
    batch_start: Option<String>,
    progress: ProgressBar,
    visited: HashSet<PathBuf>,
    /// Batches sent to the store that have not finished yet, oldest first.
    in_flight: FuturesOrdered<Pending<'a>>,
    /// The keys of each batch in `in_flight`, in the same order.
    in_flight_keys: VecDeque<HashSet<(String, String)>>,
}

/// Batches the store may write at the same time. PostgreSQL writes each on a
/// connection of its own; SQLite has one writer, so they queue there.
const MAX_IN_FLIGHT: usize = 2;

/// A batch being written. Its output is the store's result, the batch size and its first record.
type Pending<'a> = Pin<Box<dyn Future<Output = (Result<u64>, usize, String)> + Send + 'a>>;

/// Loads every path into `store`. Collections are written before items.
pub async fn load_paths(store: &dyn Backend, paths: &[PathBuf], options: LoadOptions) -> Result<LoadSummary> {
    let progress = if options.progress {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {pos} items loaded ({per_sec}) {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut loader = Loader {
        store,
        options,
        summary: LoadSummary::default(),
        batch: Vec::with_capacity(options.batch_size),
        bad_in_batch: 0,
        batch_start: None,
        progress,
        visited: HashSet::new(),
        in_flight: FuturesOrdered::new(),
        in_flight_keys: VecDeque::new(),
    };

    let mut sources = Vec::new();
    for path in paths {
        loader.discover(path, None, &mut sources).await?;
    }
    // Reading and checking items is CPU work. It runs on a thread of its own, so
    // the next batches are ready while the store writes the current one.
    let (sender, receiver) = mpsc::channel(READ_AHEAD_CHUNKS);
    let checks = options.checks;
    let reader = tokio::task::spawn_blocking(move || read_sources(&sources, checks, &sender));
    let written = loader.write_items(receiver).await;
    // When writing fails the receiver is gone, and the reader stops at its next send.
    reader
        .await
        .map_err(|e| Error::Internal(format!("the item reader stopped: {e}")))?;
    written?;
    loader.flush().await?;
    loader.wait_for(0).await?;
    loader.progress.finish_and_clear();
    Ok(loader.summary)
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    serde_json::from_str(&text)
        .map_err(|e| Error::InvalidDocument(format!("{}: invalid JSON: {e}", path.display())))
}

fn is_ndjson(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("ndjson" | "jsonl" | "geojsonl" | "geojsons")
    )
}

fn is_json(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("json" | "geojson")
    )
}

/// Resolves a link href relative to the document it appears in; remote hrefs are skipped.
fn local_href(document: &Path, href: &str) -> Option<PathBuf> {
    if href.contains("://") {
        return None;
    }
    let href = href.strip_prefix("file://").unwrap_or(href);
    // Collecting the components drops `.` segments, so messages show clean paths.
    Some(
        document
            .parent()
            .unwrap_or(Path::new("."))
            .join(href)
            .components()
            .collect(),
    )
}

fn links_with_rel(value: &Value, rel: &str) -> Vec<String> {
    value["links"]
        .as_array()
        .map(|links| {
            links
                .iter()
                .filter(|l| l["rel"] == rel)
                .filter_map(|l| l["href"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Records in a chunk sent from the reader to the writer.
const CHUNK: usize = 256;
/// Chunks the reader may be ahead of the writer.
const READ_AHEAD_CHUNKS: usize = 16;

/// A record that the reader found in the input, sent in input order.
// Nearly every event is an item, so boxing it would only add an allocation per item.
#[allow(clippy::large_enum_variant)]
enum Event {
    Item(Record),
    Bad { origin: String, message: String },
}

/// Sends events in chunks; stops early when the writer is gone.
struct EventSender<'a> {
    sender: &'a mpsc::Sender<Result<Vec<Event>>>,
    chunk: Vec<Event>,
}

impl EventSender<'_> {
    /// Queues an event; returns false when the writer no longer listens.
    fn send(&mut self, event: Event) -> bool {
        self.chunk.push(event);
        self.chunk.len() < CHUNK || self.flush()
    }

    fn flush(&mut self) -> bool {
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK));
        chunk.is_empty() || self.sender.blocking_send(Ok(chunk)).is_ok()
    }

    fn item(&mut self, value: Value, origin: String, collection: Option<&str>, checks: Checks) -> bool {
        let id = value["id"].as_str().unwrap_or("(no id)").to_string();
        let event = match prepare_item_with(value, collection, checks) {
            Ok(item) => Event::Item(Record { item, origin }),
            Err(e) if e.starts_with("item '") => Event::Bad {
                message: format!("{origin}: {e}"),
                origin,
            },
            Err(e) => Event::Bad {
                message: format!("{origin}: item '{id}': {e}"),
                origin,
            },
        };
        self.send(event)
    }
}

/// Reads, parses and checks the items of every source, on a blocking thread.
/// An I/O error ends the load; it is sent after the events read before it.
fn read_sources(sources: &[ItemSource], checks: Checks, sender: &mpsc::Sender<Result<Vec<Event>>>) {
    let mut events = EventSender {
        sender,
        chunk: Vec::with_capacity(CHUNK),
    };
    for source in sources {
        match read_source(source, checks, &mut events) {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                if events.flush() {
                    let _ = sender.blocking_send(Err(e));
                }
                return;
            }
        }
    }
    events.flush();
}

/// Reads one source; returns false when the writer is gone.
fn read_source(source: &ItemSource, checks: Checks, events: &mut EventSender) -> Result<bool> {
    let display = source.path.display().to_string();
    let collection = source.collection.as_deref();
    if is_ndjson(&source.path) {
        let file = std::fs::File::open(&source.path).map_err(|e| Error::Io {
            path: display.clone(),
            source: e,
        })?;
        for (index, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| Error::Io {
                path: display.clone(),
                source: e,
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let origin = format!("{display}:{}", index + 1);
            let listening = match serde_json::from_str::<Value>(&line) {
                Ok(value) => events.item(value, origin, collection, checks),
                Err(e) => events.send(Event::Bad {
                    message: format!("{origin}: invalid JSON: {e}"),
                    origin,
                }),
            };
            if !listening {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    let value = read_json(&source.path)?;
    if value["type"] == "FeatureCollection" {
        let features = match value.get("features") {
            Some(Value::Array(features)) => features.clone(),
            _ => {
                return Ok(events.send(Event::Bad {
                    message: format!("{display}: 'features' is missing or not an array"),
                    origin: display,
                }));
            }
        };
        for (index, feature) in features.into_iter().enumerate() {
            let origin = format!("{display}: feature {}", index + 1);
            if !events.item(feature, origin, collection, checks) {
                return Ok(false);
            }
        }
        Ok(true)
    } else {
        Ok(events.item(value, display, collection, checks))
    }
}

impl Loader<'_> {
    /// Walks a path: writes collections at once and queues item sources.
    async fn discover(
        &mut self,
        path: &Path,
        collection: Option<String>,
        sources: &mut Vec<ItemSource>,
    ) -> Result<()> {
        let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if !self.visited.insert(key) {
            return Ok(());
        }
        if path.is_dir() {
            return Box::pin(self.discover_dir(path, collection, sources)).await;
        }
        if !path.exists() {
            return Err(Error::Io {
                path: path.display().to_string(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
            });
        }
        if is_ndjson(path) {
            sources.push(ItemSource {
                path: path.to_path_buf(),
                collection,
            });
            return Ok(());
        }
        let value = match read_json(path) {
            Ok(value) => value,
            Err(Error::InvalidDocument(message)) => {
                // An unreadable file is not part of any batch, so it is counted alone.
                self.summary.errors.push(message);
                self.summary.rejected += 1;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        match value["type"].as_str() {
            Some("Collection") => {
                let id = self.write_collection(path, value.clone()).await?;
                let items = links_with_rel(&value, "item");
                for href in items {
                    if let Some(item) = local_href(path, &href) {
                        Box::pin(self.discover(&item, Some(id.clone()), sources)).await?;
                    }
                }
                Ok(())
            }
            Some("Catalog") => {
                for rel in ["child", "item"] {
                    for href in links_with_rel(&value, rel) {
                        if let Some(child) = local_href(path, &href) {
                            Box::pin(self.discover(&child, collection.clone(), sources)).await?;
                        }
                    }
                }
                Ok(())
            }
            Some("Feature" | "FeatureCollection") => {
                sources.push(ItemSource {
                    path: path.to_path_buf(),
                    collection,
                });
                Ok(())
            }
            other => Err(Error::InvalidDocument(format!(
                "{}: not a STAC Collection, Catalog, Item or ItemCollection (type is {})",
                path.display(),
                other.map_or("missing".to_string(), |t| format!("\"{t}\""))
            ))),
        }
    }

    async fn discover_dir(
        &mut self,
        dir: &Path,
        collection: Option<String>,
        sources: &mut Vec<ItemSource>,
    ) -> Result<()> {
        for name in ["catalog.json", "collection.json"] {
            let root = dir.join(name);
            if !root.is_file() {
                continue;
            }
            let value = read_json(&root)?;
            let follows_links =
                !links_with_rel(&value, "item").is_empty() || !links_with_rel(&value, "child").is_empty();
            let own_collection =
                (value["type"] == "Collection").then(|| value["id"].as_str().map(str::to_string));
            self.discover(&root, collection.clone(), sources).await?;
            if !follows_links {
                // A collection without item links: its items are the other files of the folder.
                let collection = own_collection.flatten().or(collection.clone());
                self.discover_files(dir, collection, sources).await?;
            }
            return Ok(());
        }
        self.discover_files(dir, collection, sources).await
    }

    async fn discover_files(
        &mut self,
        dir: &Path,
        collection: Option<String>,
        sources: &mut Vec<ItemSource>,
    ) -> Result<()> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|source| Error::Io {
                path: dir.display().to_string(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for entry in entries {
            let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if name == "catalog.json" || name == "collection.json" || name.starts_with('.') {
                continue;
            }
            if entry.is_dir() || is_json(&entry) || is_ndjson(&entry) {
                Box::pin(self.discover(&entry, collection.clone(), sources)).await?;
            }
        }
        Ok(())
    }

    async fn write_collection(&mut self, path: &Path, value: Value) -> Result<String> {
        let prepared = prepare_collection(value)
            .map_err(|e| Error::InvalidDocument(format!("{}: {e}", path.display())))?;
        self.store.upsert_collection(&prepared).await?;
        self.summary.collections += 1;
        Ok(prepared.id)
    }

    /// Records a bad record. It takes a place in the current batch, which is
    /// then rejected as a whole.
    async fn reject_record(&mut self, origin: String, message: String) -> Result<()> {
        self.summary.errors.push(message);
        self.summary.rejected += 1;
        self.bad_in_batch += 1;
        self.batch_start.get_or_insert(origin);
        if self.batch.len() + self.bad_in_batch >= self.options.batch_size {
            self.flush().await?;
        }
        Ok(())
    }

    async fn push(&mut self, record: Record) -> Result<()> {
        self.batch_start.get_or_insert_with(|| record.origin.clone());
        self.batch.push(record);
        if self.batch.len() + self.bad_in_batch >= self.options.batch_size {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes the records that the reader sends, in input order.
    async fn write_items(&mut self, mut events: mpsc::Receiver<Result<Vec<Event>>>) -> Result<()> {
        loop {
            // Finished batches are counted as they complete, so each one frees
            // its place while the reader is still busy.
            tokio::select! {
                Some(done) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    self.in_flight_keys.pop_front();
                    self.finish(done)?;
                }
                chunk = events.recv() => {
                    let Some(chunk) = chunk else { return Ok(()) };
                    for event in chunk? {
                        match event {
                            Event::Item(record) => self.push(record).await?,
                            Event::Bad { origin, message } => self.reject_record(origin, message).await?,
                        }
                    }
                }
            }
        }
    }

    /// Writes the queued batch in one transaction, or rejects all of it.
    async fn flush(&mut self) -> Result<()> {
        let batch = std::mem::take(&mut self.batch);
        let bad = std::mem::take(&mut self.bad_in_batch);
        let first = self.batch_start.take().unwrap_or_default();
        if batch.is_empty() {
            return Ok(());
        }
        if bad > 0 {
            self.summary.rejected += batch.len() as u64;
            self.summary.errors.push(format!(
                "rejected a batch of {} item(s) starting at {first} because it holds a bad record",
                batch.len()
            ));
            return Ok(());
        }
        let items = match self.options.mode {
            InsertMode::Upsert => dedup_keep_last(batch),
            InsertMode::Insert => {
                let mut seen = HashSet::new();
                let repeated: Vec<String> = batch
                    .iter()
                    .filter(|r| !seen.insert((r.item.collection.clone(), r.item.id.clone())))
                    .map(|r| format!("{} ({}/{})", r.origin, r.item.collection, r.item.id))
                    .collect();
                if !repeated.is_empty() {
                    self.summary.rejected += batch.len() as u64;
                    self.summary.errors.push(format!(
                        "rejected a batch of {} item(s) starting at {first}: ids repeated in the input: {}",
                        batch.len(),
                        repeated.join(", ")
                    ));
                    return Ok(());
                }
                batch.into_iter().map(|r| r.item).collect()
            }
        };
        // A batch that shares a key with one being written waits for it, so the
        // later record always wins and a duplicate is reported in the later batch.
        let keys: HashSet<(String, String)> = items
            .iter()
            .map(|i| (i.collection.clone(), i.id.clone()))
            .collect();
        if self.in_flight_keys.iter().any(|other| !other.is_disjoint(&keys)) {
            self.wait_for(0).await?;
        }
        self.wait_for(MAX_IN_FLIGHT - 1).await?;
        let store = self.store;
        let mode = self.options.mode;
        self.in_flight.push_back(Box::pin(async move {
            let count = items.len();
            (store.insert_items(&items, mode).await, count, first)
        }));
        self.in_flight_keys.push_back(keys);
        Ok(())
    }

    /// Waits until at most `limit` batches are being written.
    async fn wait_for(&mut self, limit: usize) -> Result<()> {
        while self.in_flight.len() > limit {
            let Some(done) = self.in_flight.next().await else {
                break;
            };
            self.in_flight_keys.pop_front();
            self.finish(done)?;
        }
        Ok(())
    }

    /// Adds the result of one batch to the summary.
    fn finish(&mut self, (result, count, first): (Result<u64>, usize, String)) -> Result<()> {
        match result {
            Ok(written) => {
                self.summary.items += written;
                self.progress.inc(written);
            }
            Err(e @ (Error::Conflict(_) | Error::NotFound(_) | Error::InvalidDocument(_))) => {
                self.summary.rejected += count as u64;
                self.summary.errors.push(format!(
                    "rejected a batch of {count} item(s) starting at {first}: {e}"
                ));
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }
}

/// Keeps the last record of each (collection, id) in a batch, in input order.
fn dedup_keep_last(batch: Vec<Record>) -> Vec<PreparedItem> {
    let mut seen = HashSet::new();
    let mut kept: Vec<PreparedItem> = batch
        .into_iter()
        .rev()
        .filter(|r| seen.insert((r.item.collection.clone(), r.item.id.clone())))
        .map(|r| r.item)
        .collect();
    kept.reverse();
    kept
}

/// Prints the summary of a load and returns it.
pub fn report(summary: &LoadSummary, started: Instant) {
    let seconds = started.elapsed().as_secs_f64();
    let rate = if seconds > 0.0 {
        summary.items as f64 / seconds
    } else {
        0.0
    };
    for error in &summary.errors {
        eprintln!("error: {error}");
    }
    println!(
        "loaded {} collection(s) and {} item(s) in {seconds:.2} s ({rate:.0} items/s); rejected {} item(s)",
        summary.collections, summary.items, summary.rejected
    );
}
