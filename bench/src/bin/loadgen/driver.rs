//! The network side of the load generator: HTTP/2 channels, a codec that sends pre-encoded
//! requests as they are, loading a workload through the public API, and the closed-loop
//! measurement of one phase (CPU of the server and of this process sampled over the window).

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::{Buf as _, BufMut as _, Bytes};
use hdrhistogram::Histogram;
use ostiary_bench::loadgen::stats::{self, Latency, Sample};
use ostiary_bench::loadgen::workload::{Call, Workload};
use ostiary_proto::authzed::api::v1 as pb;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

use crate::procfs;

const CHECK: &str = "/authzed.api.v1.PermissionsService/CheckPermission";
const LOOKUP_RESOURCES: &str = "/authzed.api.v1.PermissionsService/LookupResources";
const LOOKUP_SUBJECTS: &str = "/authzed.api.v1.PermissionsService/LookupSubjects";
const WRITE: &str = "/authzed.api.v1.PermissionsService/WriteRelationships";

/// Relationships per ImportBulkRelationships message or WriteRelationships call.
const LOAD_BATCH: usize = 1_000;

/// Relationships per ImportBulkRelationships stream.
const IMPORT_CHUNK: usize = 250_000;

/// Sends `Bytes` as an already encoded message; decodes answers with `D`.
#[derive(Debug)]
struct RawCodec<D>(PhantomData<fn() -> D>);

impl<D> Default for RawCodec<D> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

#[derive(Debug)]
struct RawEncoder;

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

/// Decodes a prost message.
#[derive(Debug)]
struct MessageDecoder<M>(PhantomData<fn() -> M>);

impl<M: prost::Message + Default> Decoder for MessageDecoder<M> {
    type Item = M;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<M>, Status> {
        M::decode(src)
            .map(Some)
            .map_err(|err| Status::internal(format!("undecodable answer: {err}")))
    }
}

/// Skips a message: streamed lookup results are counted, not parsed.
#[derive(Debug)]
struct Skip;

#[derive(Debug)]
struct SkipDecoder;

impl Decoder for SkipDecoder {
    type Item = Skip;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Skip>, Status> {
        let n_bytes = src.remaining();
        src.advance(n_bytes);
        Ok(Some(Skip))
    }
}

trait Answer: Send + Sync + 'static {
    type Decoder: Decoder<Item = Self, Error = Status> + Send + 'static;
    fn decoder() -> Self::Decoder;
}

impl Answer for Skip {
    type Decoder = SkipDecoder;
    fn decoder() -> SkipDecoder {
        SkipDecoder
    }
}

impl Answer for pb::CheckPermissionResponse {
    type Decoder = MessageDecoder<Self>;
    fn decoder() -> Self::Decoder {
        MessageDecoder(PhantomData)
    }
}

impl Answer for pb::WriteRelationshipsResponse {
    type Decoder = MessageDecoder<Self>;
    fn decoder() -> Self::Decoder {
        MessageDecoder(PhantomData)
    }
}

impl<D: Answer> Codec for RawCodec<D> {
    type Encode = Bytes;
    type Decode = D;
    type Encoder = RawEncoder;
    type Decoder = D::Decoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> D::Decoder {
        D::decoder()
    }
}

/// Opens `n` HTTP/2 connections to `addr` (plaintext).
pub(crate) async fn connect(addr: &str, n: usize) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        let channel = Endpoint::from_shared(format!("http://{addr}"))?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        channels.push(channel);
    }
    Ok(channels)
}

/// Waits until `addr` answers gRPC calls (any status but UNAVAILABLE), up to `timeout`.
pub(crate) async fn wait_ready(addr: &str, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(channels) = connect(addr, 1).await {
            let mut client =
                pb::schema_service_client::SchemaServiceClient::new(channels[0].clone());
            match client.read_schema(pb::ReadSchemaRequest {}).await {
                Ok(_) => return Ok(()),
                Err(status) if status.code() != Code::Unavailable => return Ok(()),
                Err(_) => {}
            }
        }
        if Instant::now() > deadline {
            bail!("{addr} did not answer within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How a workload was loaded.
#[derive(Debug, Clone)]
pub(crate) struct LoadReport {
    /// Relationships written.
    pub(crate) relationships: u64,
    /// Wall time of WriteSchema and the relationships.
    pub(crate) seconds: f64,
    /// `ImportBulkRelationships` or `WriteRelationships`.
    pub(crate) method: &'static str,
    /// CPU seconds the server used during the load.
    pub(crate) server_cpu_seconds: Option<f64>,
    /// CPU seconds this process used during the load (generating and encoding relationships).
    pub(crate) client_cpu_seconds: Option<f64>,
}

/// Writes the schema and the relationships of `workload` to the server behind `channel`:
/// ImportBulkRelationships when `bulk`, WriteRelationships (CREATE, 1,000 per call) otherwise.
pub(crate) async fn load(
    channel: Channel,
    workload: Arc<Workload>,
    bulk: bool,
    server_pid: u32,
) -> anyhow::Result<LoadReport> {
    let start = Instant::now();
    let server_cpu_start = procfs::cpu_seconds(server_pid);
    let client_cpu_start = procfs::self_cpu_seconds();
    let mut schema = pb::schema_service_client::SchemaServiceClient::new(channel.clone());
    schema
        .write_schema(pb::WriteSchemaRequest {
            schema: workload.schema.clone(),
        })
        .await
        .with_context(|| format!("WriteSchema of workload `{}`", workload.name))?;
    let mut permissions = pb::permissions_service_client::PermissionsServiceClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Vec<pb::Relationship>>(8);
    let producer_workload = Arc::clone(&workload);
    let producer = tokio::task::spawn_blocking(move || {
        let mut batch = Vec::with_capacity(LOAD_BATCH);
        for rel in producer_workload.relationships() {
            batch.push(rel);
            if batch.len() == LOAD_BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(LOAD_BATCH));
                if sender.blocking_send(full).is_err() {
                    return;
                }
            }
        }
        if !batch.is_empty() {
            let _ignored = sender.blocking_send(batch);
        }
    });
    let mut written = 0u64;
    let method = if bulk {
        // One stream per IMPORT_CHUNK relationships: Ostiary holds an import stream in memory
        // until it ends (about 2 GiB of RSS for one stream of 1M relationships).
        let mut pending = receiver.recv().await;
        while pending.is_some() {
            let (request_sender, request_receiver) = tokio::sync::mpsc::channel(8);
            let stream = tokio_stream::wrappers::ReceiverStream::new(request_receiver);
            let call = permissions.import_bulk_relationships(stream);
            let feed = async {
                let mut in_chunk = 0;
                while let Some(batch) = pending.take() {
                    in_chunk += batch.len();
                    let request = pb::ImportBulkRelationshipsRequest {
                        relationships: batch,
                    };
                    if request_sender.send(request).await.is_err() {
                        break;
                    }
                    pending = receiver.recv().await;
                    if in_chunk >= IMPORT_CHUNK {
                        break;
                    }
                }
                drop(request_sender);
            };
            let (answer, ()) = tokio::join!(call, feed);
            written += answer
                .context("ImportBulkRelationships")?
                .into_inner()
                .num_loaded;
        }
        "ImportBulkRelationships"
    } else {
        while let Some(batch) = receiver.recv().await {
            let n_batch = batch.len() as u64;
            let updates = batch
                .into_iter()
                .map(|rel| pb::RelationshipUpdate {
                    operation: pb::relationship_update::Operation::Create as i32,
                    relationship: Some(rel),
                })
                .collect();
            permissions
                .write_relationships(pb::WriteRelationshipsRequest {
                    updates,
                    optional_preconditions: Vec::new(),
                    optional_transaction_metadata: None,
                })
                .await
                .context("WriteRelationships")?;
            written += n_batch;
        }
        "WriteRelationships"
    };
    producer.await?;
    let expected = workload.n_relationships();
    if written != expected {
        bail!("loaded {written} relationships of {expected}");
    }
    let delta = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
    Ok(LoadReport {
        relationships: written,
        seconds: start.elapsed().as_secs_f64(),
        method,
        server_cpu_seconds: delta(server_cpu_start, procfs::cpu_seconds(server_pid)),
        client_cpu_seconds: delta(client_cpu_start, procfs::self_cpu_seconds()),
    })
}

/// The timing of one measurement.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    /// Calls run, unmeasured, before the window opens.
    pub(crate) warmup: Duration,
    /// The window's length, unless fewer than `min_calls` completed in it.
    pub(crate) seconds: Duration,
    /// The window stays open until this many calls completed ...
    pub(crate) min_calls: u64,
    /// ... or this much time passed.
    pub(crate) max_seconds: Duration,
}

#[derive(Debug)]
struct TaskStats {
    histogram: Histogram<u64>,
    calls: u64,
    errors: u64,
    allowed: u64,
    denied: u64,
    conditional: u64,
    results: u64,
    first_error: Option<String>,
}

#[derive(Debug)]
struct Shared {
    recording: AtomicBool,
    completed: AtomicU64,
    stats: Vec<Mutex<TaskStats>>,
}

enum Outcome {
    Check(i32),
    Results(u64),
    Written,
}

impl Shared {
    fn record(&self, task_idx: usize, elapsed: Duration, outcome: &Result<Outcome, Status>) {
        if !self.recording.load(Ordering::Relaxed) {
            return;
        }
        let Ok(mut stats) = self.stats[task_idx].lock() else {
            return;
        };
        match outcome {
            Ok(answer) => {
                let us = (elapsed.as_micros() as u64).max(1);
                stats.histogram.saturating_record(us);
                stats.calls += 1;
                match answer {
                    Outcome::Check(permissionship) => match permissionship {
                        2 => stats.allowed += 1,
                        3 => stats.conditional += 1,
                        _ => stats.denied += 1,
                    },
                    Outcome::Results(n) => stats.results += n,
                    Outcome::Written => {}
                }
                self.completed.fetch_add(1, Ordering::Relaxed);
            }
            Err(status) => {
                stats.errors += 1;
                if stats.first_error.is_none() {
                    stats.first_error = Some(format!("{:?}: {}", status.code(), status.message()));
                }
            }
        }
    }
}

async fn unary<D: Answer>(
    grpc: &mut tonic::client::Grpc<Channel>,
    path: &'static str,
    body: Bytes,
) -> Result<D, Status> {
    grpc.ready()
        .await
        .map_err(|err| Status::unavailable(err.to_string()))?;
    let answer = grpc
        .unary(
            Request::new(body),
            PathAndQuery::from_static(path),
            RawCodec::<D>::default(),
        )
        .await?;
    Ok(answer.into_inner())
}

async fn streaming(
    grpc: &mut tonic::client::Grpc<Channel>,
    path: &'static str,
    body: Bytes,
) -> Result<u64, Status> {
    grpc.ready()
        .await
        .map_err(|err| Status::unavailable(err.to_string()))?;
    let mut stream = grpc
        .server_streaming(
            Request::new(body),
            PathAndQuery::from_static(path),
            RawCodec::<Skip>::default(),
        )
        .await?
        .into_inner();
    let mut n = 0;
    while stream.message().await?.is_some() {
        n += 1;
    }
    Ok(n)
}

async fn load_task(
    channel: Channel,
    calls: Arc<Vec<Call>>,
    shared: Arc<Shared>,
    task_idx: usize,
    stride: usize,
) {
    let mut grpc = tonic::client::Grpc::new(channel);
    let mut call_idx = task_idx;
    loop {
        let call = &calls[call_idx % calls.len()];
        call_idx += stride;
        let start = Instant::now();
        match call {
            Call::Check(body) => {
                let outcome = unary::<pb::CheckPermissionResponse>(&mut grpc, CHECK, body.clone())
                    .await
                    .map(|answer| Outcome::Check(answer.permissionship));
                shared.record(task_idx, start.elapsed(), &outcome);
            }
            Call::LookupResources(body) => {
                let outcome = streaming(&mut grpc, LOOKUP_RESOURCES, body.clone())
                    .await
                    .map(Outcome::Results);
                shared.record(task_idx, start.elapsed(), &outcome);
            }
            Call::LookupSubjects(body) => {
                let outcome = streaming(&mut grpc, LOOKUP_SUBJECTS, body.clone())
                    .await
                    .map(Outcome::Results);
                shared.record(task_idx, start.elapsed(), &outcome);
            }
            Call::WriteThenCheck { write, check } => {
                let written =
                    unary::<pb::WriteRelationshipsResponse>(&mut grpc, WRITE, write.clone()).await;
                let token = written
                    .as_ref()
                    .ok()
                    .and_then(|answer| answer.written_at.clone());
                shared.record(
                    task_idx,
                    start.elapsed(),
                    &written.map(|_| Outcome::Written),
                );
                let Some(token) = token else { continue };
                let mut fresh = (**check).clone();
                fresh.consistency = Some(pb::Consistency {
                    requirement: Some(pb::consistency::Requirement::AtLeastAsFresh(token)),
                });
                let body = Bytes::from(prost::Message::encode_to_vec(&fresh));
                let start = Instant::now();
                let outcome = unary::<pb::CheckPermissionResponse>(&mut grpc, CHECK, body)
                    .await
                    .map(|answer| Outcome::Check(answer.permissionship));
                shared.record(task_idx, start.elapsed(), &outcome);
            }
        }
    }
}

/// The result of one measurement, with the first error seen (if any).
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    pub(crate) sample: Sample,
    pub(crate) first_error: Option<String>,
}

/// Runs `calls` closed-loop with `concurrency` calls in flight over `channels` (task `i` uses
/// channel `i % n` and cycles through the calls from offset `i` with stride `concurrency`), and
/// measures the window after the warm-up. `server_pid` is the process whose CPU is sampled.
pub(crate) async fn measure(
    channels: &[Channel],
    calls: Arc<Vec<Call>>,
    concurrency: usize,
    window: Window,
    server_pid: Option<u32>,
) -> anyhow::Result<Measured> {
    if calls.is_empty() || channels.is_empty() {
        bail!("nothing to measure");
    }
    let stats = (0..concurrency)
        .map(|_| {
            Ok(Mutex::new(TaskStats {
                histogram: stats::new_histogram()?,
                calls: 0,
                errors: 0,
                allowed: 0,
                denied: 0,
                conditional: 0,
                results: 0,
                first_error: None,
            }))
        })
        .collect::<Result<Vec<_>, hdrhistogram::CreationError>>()?;
    let shared = Arc::new(Shared {
        recording: AtomicBool::new(false),
        completed: AtomicU64::new(0),
        stats,
    });
    let tasks: Vec<_> = (0..concurrency)
        .map(|task_idx| {
            tokio::spawn(load_task(
                channels[task_idx % channels.len()].clone(),
                Arc::clone(&calls),
                Arc::clone(&shared),
                task_idx,
                concurrency,
            ))
        })
        .collect();
    tokio::time::sleep(window.warmup).await;
    let server_cpu_start = server_pid.and_then(procfs::cpu_seconds);
    let client_cpu_start = procfs::self_cpu_seconds();
    let start = Instant::now();
    shared.recording.store(true, Ordering::SeqCst);
    tokio::time::sleep(window.seconds).await;
    // Long calls at high concurrency complete in bursts (every task's call finishes at about
    // the same time): stopping after a few completions would charge the CPU of all calls in
    // flight to those few. Keep the window open until each task completed a call.
    let min_calls = window.min_calls.max(concurrency as u64);
    while shared.completed.load(Ordering::Relaxed) < min_calls
        && start.elapsed() < window.max_seconds
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shared.recording.store(false, Ordering::SeqCst);
    let seconds = start.elapsed().as_secs_f64();
    let server_cpu_end = server_pid.and_then(procfs::cpu_seconds);
    let client_cpu_end = procfs::self_cpu_seconds();
    for task in &tasks {
        task.abort();
    }
    for task in tasks {
        let _aborted = task.await;
    }
    let mut histogram = stats::new_histogram()?;
    let mut sample = Sample {
        seconds,
        server_cpu_seconds: match (server_cpu_start, server_cpu_end) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        },
        client_cpu_seconds: match (client_cpu_start, client_cpu_end) {
            (Some(a), Some(b)) => b - a,
            _ => 0.0,
        },
        ..Sample::default()
    };
    let mut first_error = None;
    for task_stats in &shared.stats {
        let Ok(task_stats) = task_stats.lock() else {
            continue;
        };
        histogram.add(&task_stats.histogram)?;
        sample.calls += task_stats.calls;
        sample.errors += task_stats.errors;
        sample.allowed += task_stats.allowed;
        sample.denied += task_stats.denied;
        sample.conditional += task_stats.conditional;
        sample.stream_results += task_stats.results;
        if first_error.is_none() {
            first_error.clone_from(&task_stats.first_error);
        }
    }
    sample.latency = Latency::from_histogram(&histogram);
    Ok(Measured {
        sample,
        first_error,
    })
}

/// Waits until `pid` uses less than 5% of a core over 200 ms (abandoned calls may keep a server
/// busy after the client went away), up to `max`.
pub(crate) async fn settle(pid: u32, max: Duration) {
    let start = Instant::now();
    let mut last = procfs::cpu_seconds(pid);
    while start.elapsed() < max {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = procfs::cpu_seconds(pid);
        match (last, now) {
            (Some(a), Some(b)) if b - a < 0.01 => return,
            (_, None) => return,
            _ => last = now,
        }
    }
}
