//! `ostiary export FILE` and `ostiary import FILE`: bulk copy of a server's schema and
//! relationships through a JSON-lines file (the format is described in
//! [`mod@format`]).
//!
//! * Export reads the schema (ReadSchema gives the revision), then streams
//!   ExportBulkRelationships at exactly that revision, writing a checkpoint line (the cursor)
//!   after every page. `--resume` truncates a partial file after its last checkpoint and
//!   continues from that cursor at the header's revision.
//! * Import reads the whole file once to check the header, every line and the trailer's
//!   count and SHA-256 before writing anything; then it writes the schema and sends the
//!   relationships with ImportBulkRelationships, [`MESSAGE_SIZE`] per message and
//!   [`MESSAGES_PER_CALL`] messages per call. Each call is one transaction, so an interrupted
//!   import leaves a prefix of whole calls. `--resume` sends the same calls again; a call
//!   whose relationships already (partly) exist fails as a whole with `ALREADY_EXISTS`, and
//!   its relationships are then written with WriteRelationships `TOUCH` (idempotent, in
//!   chunks of [`TOUCH_CHUNK`]), so the result is the file's data whatever the prefix was.

pub(crate) mod format;

use std::fs::{File, OpenOptions};
use std::io::{
    BufRead as _, BufReader, BufWriter, IsTerminal as _, Seek as _, SeekFrom, Write as _,
};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use ostiary_proto::authzed::api::v1 as pb;
use ostiary_proto::authzed::api::v1::permissions_service_client::PermissionsServiceClient;
use ostiary_proto::authzed::api::v1::schema_service_client::SchemaServiceClient;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use self::format::{Checkpoint, Digest, Header, Line};
use crate::cmd::client::CallMetadata;

/// Relationships per ImportBulkRelationships message.
pub(crate) const MESSAGE_SIZE: usize = 1000;
/// Messages per ImportBulkRelationships call (one transaction).
pub(crate) const MESSAGES_PER_CALL: usize = 5;
/// Relationships per WriteRelationships call when a call is redone with `TOUCH` (SpiceDB's
/// default `max-updates-per-write`).
pub(crate) const TOUCH_CHUNK: usize = 1000;

/// How to reach the server.
#[derive(Debug, Args)]
pub(crate) struct ConnectionArgs {
    /// The server's gRPC address (`HOST:PORT`, or a `http://` URL); plaintext.
    #[arg(long, default_value = "127.0.0.1:50051", value_name = "ADDR")]
    pub(crate) endpoint: String,
    /// The API token or preshared key, sent as `authorization: Bearer <token>`.
    #[arg(
        long,
        env = "OSTIARY_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub(crate) token: Option<String>,
    /// The tenant to export from or import into, sent as `ostiary-tenant` metadata (a root
    /// token may name any tenant) [default: the token's tenant].
    #[arg(long, env = "OSTIARY_TENANT", value_name = "TENANT")]
    pub(crate) tenant: Option<String>,
    /// Whom the calls are made for, sent as `ostiary-on-behalf-of` metadata and noted in the
    /// audit log.
    #[arg(long, env = "OSTIARY_ON_BEHALF_OF", value_name = "TEXT")]
    pub(crate) on_behalf_of: Option<String>,
}

/// Arguments of `ostiary export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The file to write (JSON lines: header, relationships, checkpoints, checksum trailer).
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
    /// Continue an interrupted export of FILE from its last checkpoint.
    #[arg(long)]
    pub(crate) resume: bool,
    /// How to reach the server.
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
}

/// Arguments of `ostiary import`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The file written by `ostiary export`.
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
    /// Continue an interrupted import: relationships that already exist are touched
    /// (overwritten with the file's version) instead of refused.
    #[arg(long)]
    pub(crate) resume: bool,
    /// How to reach the server.
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
}

type Authed = InterceptedService<Channel, CallMetadata>;

/// The clients of one server.
#[derive(Debug)]
struct Clients {
    permissions: PermissionsServiceClient<Authed>,
    schema: SchemaServiceClient<Authed>,
}

async fn connect(args: &ConnectionArgs) -> anyhow::Result<Clients> {
    let url = if args.endpoint.contains("://") {
        args.endpoint.clone()
    } else {
        format!("http://{}", args.endpoint)
    };
    let channel = Channel::from_shared(url.clone())
        .with_context(|| format!("`{}` is not a server address", args.endpoint))?
        .connect()
        .await
        .with_context(|| format!("cannot connect to `{url}`"))?;
    let metadata = CallMetadata::new(
        args.token.as_deref(),
        args.tenant.as_deref(),
        args.on_behalf_of.as_deref(),
    )?;
    Ok(Clients {
        permissions: PermissionsServiceClient::new(InterceptedService::new(
            channel.clone(),
            metadata.clone(),
        )),
        schema: SchemaServiceClient::new(InterceptedService::new(channel, metadata)),
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// A progress bar on standard error when it is a terminal, else nothing.
fn progress(total: Option<u64>, verb: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(total) => ProgressBar::new(total).with_style(
            ProgressStyle::with_template(
                "{msg} {wide_bar} {human_pos}/{human_len} relationships ({per_sec}, {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {msg} {human_pos} relationships ({per_sec})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_message(verb.to_owned());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Runs `ostiary export`.
pub(crate) fn run_export(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(export(args))
}

/// Runs `ostiary import`.
pub(crate) fn run_import(args: &ImportArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(import(args))
}

/// Where an export (re)starts.
struct ExportStart {
    header: Header,
    cursor: Option<String>,
    digest: Digest,
    writer: BufWriter<File>,
}

async fn export(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let path = &args.file;
    let mut clients = connect(&args.connection).await?;
    let start = if args.resume {
        match resume_point(path)? {
            Some(start) => start,
            None => {
                eprintln!("`{}` is already complete", path.display());
                return Ok(ExitCode::SUCCESS);
            }
        }
    } else {
        let response = clients
            .schema
            .read_schema(pb::ReadSchemaRequest {})
            .await
            .context("cannot read the schema")?
            .into_inner();
        let header = Header {
            format: format::FORMAT.to_owned(),
            version: format::VERSION,
            schema: response.schema_text,
            revision: response
                .read_at
                .context("the server sent no revision with the schema")?
                .token,
        };
        let file =
            File::create(path).with_context(|| format!("cannot create `{}`", path.display()))?;
        let mut writer = BufWriter::new(file);
        writer.write_all(format::to_line(&header)?.as_bytes())?;
        writer.flush()?;
        ExportStart {
            header,
            cursor: None,
            digest: Digest::default(),
            writer,
        }
    };
    let ExportStart {
        header,
        cursor,
        mut digest,
        mut writer,
    } = start;
    let bar = progress(None, "exporting");
    bar.set_position(digest.count());
    let request = pb::ExportBulkRelationshipsRequest {
        consistency: Some(pb::Consistency {
            requirement: Some(pb::consistency::Requirement::AtExactSnapshot(
                pb::ZedToken {
                    token: header.revision.clone(),
                },
            )),
        }),
        optional_limit: 0,
        optional_cursor: cursor.map(|token| pb::Cursor { token }),
        optional_relationship_filter: None,
    };
    let mut stream = clients
        .permissions
        .export_bulk_relationships(request)
        .await
        .context("cannot export the relationships")?
        .into_inner();
    while let Some(page) = stream.message().await.context("the export stream failed")? {
        for rel in &page.relationships {
            let line = format::to_line(&format::from_pb(rel)?)?;
            writer.write_all(line.as_bytes())?;
            digest.add(line.as_bytes());
        }
        if let Some(cursor) = page.after_result_cursor {
            let checkpoint = Checkpoint {
                checkpoint: cursor.token,
                count: digest.count(),
            };
            writer.write_all(format::to_line(&checkpoint)?.as_bytes())?;
        }
        writer.flush()?;
        bar.set_position(digest.count());
    }
    writer.write_all(format::to_line(&digest.trailer())?.as_bytes())?;
    writer.flush()?;
    writer.get_ref().sync_all()?;
    bar.finish_and_clear();
    eprintln!(
        "exported the schema and {} relationships to `{}`",
        digest.count(),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads a partial export file and truncates it after its last checkpoint; `None` when the
/// file is already complete.
fn resume_point(path: &Path) -> anyhow::Result<Option<ExportStart>> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open `{}` to resume", path.display()))?;
    let mut reader = BufReader::new(&mut file);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let header = Header::parse(line.trim_end())
        .with_context(|| format!("`{}` cannot be resumed", path.display()))?;
    let mut offset = u64::try_from(line.len())?;
    let mut keep = offset;
    let mut digest = Digest::default();
    let mut kept_digest = Digest::default();
    let mut cursor = None;
    loop {
        line.clear();
        let n_read = reader.read_line(&mut line)?;
        if n_read == 0 || !line.ends_with('\n') {
            break;
        }
        offset += u64::try_from(n_read)?;
        match Line::parse(line.trim_end()) {
            Ok(Line::Relationship(_)) => digest.add(line.as_bytes()),
            Ok(Line::Checkpoint(checkpoint)) => {
                if checkpoint.count != digest.count() {
                    bail!(
                        "`{}`: a checkpoint counts {} relationships, but {} precede it",
                        path.display(),
                        checkpoint.count,
                        digest.count()
                    );
                }
                keep = offset;
                kept_digest = digest.clone();
                cursor = Some(checkpoint.checkpoint);
            }
            Ok(Line::Trailer(_)) => return Ok(None),
            // A damaged line ends what can be trusted.
            Err(_) => break,
        }
    }
    drop(reader);
    file.set_len(keep)?;
    file.seek(SeekFrom::Start(keep))?;
    Ok(Some(ExportStart {
        header,
        cursor,
        digest: kept_digest,
        writer: BufWriter::new(file),
    }))
}

/// Reads the file once: checks the header, every line, and the trailer's count and checksum.
fn verify(path: &Path) -> anyhow::Result<(Header, u64)> {
    let file = File::open(path).with_context(|| format!("cannot open `{}`", path.display()))?;
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let header = Header::parse(line.trim_end())
        .with_context(|| format!("`{}` is not an ostiary export", path.display()))?;
    let mut digest = Digest::default();
    let mut trailer = None;
    let mut line_no = 1_u64;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        line_no += 1;
        let where_ = || format!("`{}` line {line_no}", path.display());
        if trailer.is_some() {
            bail!("{}: a line after the trailer", where_());
        }
        if !line.ends_with('\n') {
            bail!("{}: the line is cut short", where_());
        }
        match Line::parse(line.trim_end()).with_context(where_)? {
            Line::Relationship(rel) => {
                format::to_pb(&rel).with_context(where_)?;
                digest.add(line.as_bytes());
            }
            Line::Checkpoint(_) => {}
            Line::Trailer(found) => trailer = Some(found),
        }
    }
    let Some(trailer) = trailer else {
        bail!(
            "`{}` has no trailer: the export is incomplete (finish it with `ostiary export --resume`)",
            path.display()
        );
    };
    let actual = digest.trailer();
    if actual != trailer {
        bail!(
            "`{}` is damaged: its trailer records {} relationships with SHA-256 `{}`, but the file has {} with SHA-256 `{}`; nothing was imported",
            path.display(),
            trailer.count,
            trailer.sha256,
            actual.count,
            actual.sha256
        );
    }
    Ok((header, actual.count))
}

async fn import(args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let path = &args.file;
    let (header, total) = verify(path)?;
    let mut clients = connect(&args.connection).await?;
    clients
        .schema
        .write_schema(pb::WriteSchemaRequest {
            schema: header.schema.clone(),
        })
        .await
        .context("cannot write the schema")?;
    let bar = progress(Some(total), "importing");
    let mut reader = BufReader::new(
        File::open(path).with_context(|| format!("cannot open `{}`", path.display()))?,
    );
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let call_size = MESSAGE_SIZE * MESSAGES_PER_CALL;
    let mut batch = Vec::with_capacity(call_size);
    let mut n_written = 0_u64;
    let mut n_touched = 0_u64;
    loop {
        line.clear();
        let at_end = reader.read_line(&mut line)? == 0;
        if !at_end && let Line::Relationship(rel) = Line::parse(line.trim_end())? {
            batch.push(format::to_pb(&rel)?);
        }
        if batch.len() == call_size || (at_end && !batch.is_empty()) {
            let n_batch = u64::try_from(batch.len())?;
            if send_call(&mut clients, std::mem::take(&mut batch), args.resume).await? {
                n_touched += n_batch;
            }
            n_written += n_batch;
            bar.set_position(n_written);
        }
        if at_end {
            break;
        }
    }
    bar.finish_and_clear();
    if n_touched > 0 {
        eprintln!(
            "imported the schema and {n_written} relationships into {} ({n_touched} touched because some already existed)",
            args.connection.endpoint
        );
    } else {
        eprintln!(
            "imported the schema and {n_written} relationships into {}",
            args.connection.endpoint
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Sends one ImportBulkRelationships call; with `resume`, redoes it with `TOUCH` when some
/// of its relationships already exist. Returns whether it was touched.
async fn send_call(
    clients: &mut Clients,
    relationships: Vec<pb::Relationship>,
    resume: bool,
) -> anyhow::Result<bool> {
    let messages: Vec<pb::ImportBulkRelationshipsRequest> = relationships
        .chunks(MESSAGE_SIZE)
        .map(|chunk| pb::ImportBulkRelationshipsRequest {
            relationships: chunk.to_vec(),
        })
        .collect();
    match clients
        .permissions
        .import_bulk_relationships(tokio_stream::iter(messages))
        .await
    {
        Ok(_) => Ok(false),
        Err(status) if status.code() == Code::AlreadyExists && resume => {
            for chunk in relationships.chunks(TOUCH_CHUNK) {
                let updates = chunk
                    .iter()
                    .map(|rel| pb::RelationshipUpdate {
                        operation: pb::relationship_update::Operation::Touch.into(),
                        relationship: Some(rel.clone()),
                    })
                    .collect();
                clients
                    .permissions
                    .write_relationships(pb::WriteRelationshipsRequest {
                        updates,
                        optional_preconditions: Vec::new(),
                        optional_transaction_metadata: None,
                    })
                    .await
                    .context("cannot touch relationships that already exist")?;
            }
            Ok(true)
        }
        Err(status) if status.code() == Code::AlreadyExists => Err(anyhow::Error::new(status)
            .context(
                "some relationships already exist on the server (rerun with `--resume` to continue an interrupted import)",
            )),
        Err(status) => Err(anyhow::Error::new(status).context("cannot import relationships")),
    }
}
