//! Where finished proofs are kept. By default a local directory, where each proof is written
//! durably (temporary file, fsync, rename). In a cluster, where another node may serve the
//! proof, an S3-compatible bucket through the `object_store` crate (`artifacts_url =
//! "s3://bucket/prefix"`, with `[artifacts_options]` and the usual `AWS_*` variables for the
//! endpoint and credentials).
//!
//! A job records its proof's location: a local path, or an `s3://` URL naming the object.
//! Reading a location works in both modes, so jobs finished before a switch stay readable
//! (local paths by the node that wrote them).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};

/// How long one proof upload may take before the proof is kept locally instead.
const PUT_TIMEOUT: Duration = Duration::from_secs(60);

/// An artifact store that cannot be set up, written or read.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The configuration names an unusable store.
    #[error("artifacts: {0}")]
    Config(String),
    /// A local file operation failed.
    #[error("artifacts: {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The object store refused or failed.
    #[error("artifacts: {location}: {source}")]
    Object {
        /// The object's URL.
        location: String,
        /// What failed.
        source: object_store::Error,
    },
}

/// The proof store: a local directory or a bucket.
#[derive(Debug, Clone)]
pub enum Artifacts {
    /// Files under a directory.
    Local {
        /// The directory.
        dir: PathBuf,
    },
    /// Objects in an S3-compatible bucket.
    Bucket {
        /// The client.
        store: Arc<dyn ObjectStore>,
        /// `s3://bucket` (no trailing slash).
        bucket_url: String,
        /// Key prefix inside the bucket (may be empty).
        prefix: ObjectPath,
        /// Where a proof goes when the bucket refuses it or does not answer in time, so
        /// that a finished proof is never lost (this node then serves it).
        fallback: PathBuf,
    },
}

impl ArtifactError {
    /// Whether the artifact does not exist (rather than being unreachable for now).
    pub fn is_not_found(&self) -> bool {
        match self {
            Self::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            Self::Object { source, .. } => matches!(source, object_store::Error::NotFound { .. }),
            Self::Config(_) => false,
        }
    }
}

impl Artifacts {
    /// A local directory (created if missing).
    pub fn local(dir: &Path) -> Result<Self, ArtifactError> {
        std::fs::create_dir_all(dir).map_err(|source| ArtifactError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        Ok(Self::Local {
            dir: dir.to_owned(),
        })
    }

    /// A bucket named by `url` (`s3://bucket[/prefix]`). The client is configured from the
    /// `AWS_*` environment variables, then from `options` (object_store's S3 keys, such as
    /// `aws_endpoint` or `aws_allow_http`), which win. Proofs the bucket cannot take go to
    /// `fallback`.
    pub fn bucket(
        url: &str,
        options: &BTreeMap<String, String>,
        fallback: &Path,
    ) -> Result<Self, ArtifactError> {
        let rest = url.strip_prefix("s3://").ok_or_else(|| {
            ArtifactError::Config(format!(
                "artifacts_url {url:?}: only s3:// URLs are supported (or none, for the local proofs directory)"
            ))
        })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(ArtifactError::Config(format!(
                "artifacts_url {url:?} names no bucket"
            )));
        }
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        for (key, value) in options {
            let key: AmazonS3ConfigKey = key.parse().map_err(|e| {
                ArtifactError::Config(format!("artifacts_options: unknown key {key:?}: {e}"))
            })?;
            if key == AmazonS3ConfigKey::Bucket {
                return Err(ArtifactError::Config(
                    "artifacts_options: the bucket is named by artifacts_url, not by an option"
                        .into(),
                ));
            }
            builder = builder.with_config(key, value);
        }
        let store = builder
            .build()
            .map_err(|e| ArtifactError::Config(format!("artifacts_url {url:?}: {e}")))?;
        Ok(Self::Bucket {
            store: Arc::new(store),
            bucket_url: format!("s3://{bucket}"),
            prefix: ObjectPath::from(prefix.trim_matches('/')),
            fallback: fallback.to_owned(),
        })
    }

    /// Checks that the store can be written and read back (a small object under the prefix,
    /// written, read and deleted), so that bad credentials or a missing bucket stop the
    /// server at start rather than failing the first finished proof.
    pub async fn check(&self) -> Result<(), ArtifactError> {
        let Self::Bucket {
            store,
            bucket_url,
            prefix,
            ..
        } = self
        else {
            return Ok(());
        };
        let key = prefix.child(".proofmill-check");
        let location = format!("{bucket_url}/{key}");
        let err = |source| ArtifactError::Object {
            location: location.clone(),
            source,
        };
        store
            .put(&key, PutPayload::from_static(b"ok"))
            .await
            .map_err(err)?;
        store
            .get(&key)
            .await
            .map_err(err)?
            .bytes()
            .await
            .map_err(err)?;
        store.delete(&key).await.map_err(err)?;
        Ok(())
    }

    /// Stores job `job_id`'s proof envelope (JSON text); returns its location.
    pub async fn put_proof(&self, job_id: &str, text: String) -> Result<String, ArtifactError> {
        let name = format!("{job_id}.json");
        match self {
            Self::Local { dir } => write_local(dir, &name, text).await,
            Self::Bucket {
                store,
                bucket_url,
                prefix,
                fallback,
            } => {
                let key = prefix.child("proofs").child(name.as_str());
                let location = format!("{bucket_url}/{key}");
                let put = store.put(&key, PutPayload::from(text.clone().into_bytes()));
                let failure = match tokio::time::timeout(PUT_TIMEOUT, put).await {
                    Ok(Ok(_)) => return Ok(location),
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => format!("no answer within {PUT_TIMEOUT:?}"),
                };
                tracing::error!(%location, reason = %failure, fallback = %fallback.display(), "the bucket did not take the proof: keeping it on this node");
                write_local(fallback, &name, text).await
            }
        }
    }

    /// Reads the artifact at `location` (as returned by [`Artifacts::put_proof`]).
    pub async fn get(&self, location: &str) -> Result<String, ArtifactError> {
        if let Some(rest) = location.strip_prefix("s3://") {
            let Self::Bucket {
                store, bucket_url, ..
            } = self
            else {
                return Err(ArtifactError::Config(format!(
                    "{location} is in a bucket, but this node has no artifacts_url"
                )));
            };
            let key = location
                .strip_prefix(bucket_url.as_str())
                .and_then(|k| k.strip_prefix('/'))
                .ok_or_else(|| {
                    ArtifactError::Config(format!(
                        "{location} is not in this node's bucket {bucket_url} (s3://{rest})"
                    ))
                })?;
            let object_err = |source| ArtifactError::Object {
                location: location.to_owned(),
                source,
            };
            let bytes = store
                .get(&ObjectPath::from(key))
                .await
                .map_err(object_err)?
                .bytes()
                .await
                .map_err(object_err)?;
            return String::from_utf8(bytes.to_vec()).map_err(|e| ArtifactError::Io {
                path: location.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            });
        }
        tokio::fs::read_to_string(location)
            .await
            .map_err(|source| ArtifactError::Io {
                path: location.to_owned(),
                source,
            })
    }

    /// Uploads `files` (under `data_dir`: SRS files, proving keys) that the bucket does not
    /// have yet, to `{prefix}/data/` with the same relative paths, so that nodes started
    /// later need not generate them. Returns how many were uploaded. Nothing to do without a
    /// bucket.
    pub async fn push_data(
        &self,
        data_dir: &Path,
        files: &[PathBuf],
    ) -> Result<usize, ArtifactError> {
        use tokio::io::AsyncWriteExt;
        let Self::Bucket {
            store,
            bucket_url,
            prefix,
            ..
        } = self
        else {
            return Ok(0);
        };
        let mut pushed = 0;
        for file in files {
            let Some(key) = file
                .strip_prefix(data_dir)
                .ok()
                .and_then(|rel| data_key(prefix, rel))
            else {
                continue;
            };
            let location = format!("{bucket_url}/{key}");
            let object_err = |source| ArtifactError::Object {
                location: location.clone(),
                source,
            };
            match store.head(&key).await {
                Ok(_) => continue,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(object_err(e)),
            }
            let io_err = |source| ArtifactError::Io {
                path: file.display().to_string(),
                source,
            };
            let mut reader = tokio::fs::File::open(file).await.map_err(io_err)?;
            // Multipart for large files (an aggregation's proving key is GBs).
            let mut writer = object_store::buffered::BufWriter::new(store.clone(), key.clone());
            let copied = tokio::io::copy(&mut reader, &mut writer).await;
            if let Err(e) = copied {
                let _ = writer.abort().await;
                return Err(io_err(e));
            }
            if let Err(e) = writer.shutdown().await {
                let _ = writer.abort().await;
                return Err(io_err(e));
            }
            tracing::info!(file = %file.display(), %location, "shared with the cluster");
            pushed += 1;
        }
        Ok(pushed)
    }

    /// Downloads the SRS files and proving keys the bucket has (`{prefix}/data/`) and
    /// `data_dir` lacks, each atomically (a key directory only once both its files are
    /// there). Returns how many files were downloaded.
    pub async fn pull_data(&self, data_dir: &Path) -> Result<usize, ArtifactError> {
        use futures_util::TryStreamExt;
        let Self::Bucket {
            store,
            bucket_url,
            prefix,
            ..
        } = self
        else {
            return Ok(0);
        };
        let root = prefix.child("data");
        let object_err = |source| ArtifactError::Object {
            location: format!("{bucket_url}/{root}"),
            source,
        };
        let objects: Vec<object_store::ObjectMeta> = store
            .list(Some(&root))
            .try_collect()
            .await
            .map_err(object_err)?;
        let relative = |meta: &object_store::ObjectMeta| -> Option<Vec<String>> {
            let parts: Vec<String> = meta
                .location
                .prefix_match(&root)?
                .map(|p| p.as_ref().to_owned())
                .collect();
            parts
                .iter()
                .all(|p| !p.is_empty() && p != "." && p != ".." && !p.contains(['/', '\\']))
                .then_some(parts)
        };
        let mut srs = Vec::new();
        let mut keys: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for meta in &objects {
            match relative(meta).as_deref() {
                Some([dir, name])
                    if dir == "srs" && name.starts_with("kzg_bn254_") && name.ends_with(".srs") =>
                {
                    srs.push(name.clone());
                }
                Some([dir, circuit, id, name]) if dir == "keys" => {
                    keys.entry((circuit.clone(), id.clone()))
                        .or_default()
                        .push(name.clone());
                }
                _ => {}
            }
        }
        let mut pulled = 0;
        for name in srs {
            let target = data_dir.join("srs").join(&name);
            if !target.exists() {
                let key = root.child("srs").child(name.as_str());
                download(store.as_ref(), bucket_url, &key, &target).await?;
                pulled += 1;
            }
        }
        for ((circuit, id), names) in keys {
            let target = data_dir.join("keys").join(&circuit).join(&id);
            let complete = ["pk.bin", "meta.json"]
                .iter()
                .all(|f| names.iter().any(|n| n == f));
            if target.exists() || !complete {
                continue;
            }
            let staging = data_dir
                .join("keys")
                .join(&circuit)
                .join(format!(".{id}.pull"));
            let _ = tokio::fs::remove_dir_all(&staging).await;
            for file in ["pk.bin", "meta.json"] {
                let key = root
                    .child("keys")
                    .child(circuit.as_str())
                    .child(id.as_str())
                    .child(file);
                download(store.as_ref(), bucket_url, &key, &staging.join(file)).await?;
                pulled += 1;
            }
            // The checksum beside the key came from the same bucket: the key store checks the
            // key against a verifying key it computes itself before the key's first use.
            let marker = staging.join(proofmill_prover::keys::FETCHED_MARKER);
            tokio::fs::write(
                &marker,
                b"fetched from the cluster's bucket; not yet checked\n",
            )
            .await
            .map_err(|source| ArtifactError::Io {
                path: marker.display().to_string(),
                source,
            })?;
            tokio::fs::rename(&staging, &target)
                .await
                .map_err(|source| ArtifactError::Io {
                    path: target.display().to_string(),
                    source,
                })?;
            tracing::info!(keys = %target.display(), "proving keys fetched from the cluster's bucket");
        }
        Ok(pulled)
    }

    /// Whether this is a bucket (shared by a cluster's nodes).
    pub fn is_bucket(&self) -> bool {
        matches!(self, Self::Bucket { .. })
    }

    /// Where proofs go, in words (for the start-up log).
    pub fn describe(&self) -> String {
        match self {
            Self::Local { dir } => dir.display().to_string(),
            Self::Bucket {
                bucket_url, prefix, ..
            } => format!("{bucket_url}/{prefix}"),
        }
    }
}

/// The object key of `rel` (a path under the data directory) under `{prefix}/data/`.
fn data_key(prefix: &ObjectPath, rel: &Path) -> Option<ObjectPath> {
    let mut key = prefix.child("data");
    for part in rel.components() {
        match part {
            std::path::Component::Normal(name) => key = key.child(name.to_str()?),
            _ => return None,
        }
    }
    Some(key)
}

/// Streams the object `key` into `target` (temporary file, fsync, rename).
async fn download(
    store: &dyn ObjectStore,
    bucket_url: &str,
    key: &ObjectPath,
    target: &Path,
) -> Result<(), ArtifactError> {
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;
    let location = format!("{bucket_url}/{key}");
    let object_err = |source| ArtifactError::Object {
        location: location.clone(),
        source,
    };
    let io_err = |source| ArtifactError::Io {
        path: target.display().to_string(),
        source,
    };
    if let Some(dir) = target.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(io_err)?;
    }
    let tmp = target.with_extension("pull-tmp");
    let written = async {
        let mut file = tokio::fs::File::create(&tmp).await.map_err(io_err)?;
        let mut stream = store.get(key).await.map_err(object_err)?.into_stream();
        while let Some(chunk) = stream.next().await {
            file.write_all(&chunk.map_err(object_err)?)
                .await
                .map_err(io_err)?;
        }
        file.sync_all().await.map_err(io_err)?;
        drop(file);
        tokio::fs::rename(&tmp, target).await.map_err(io_err)
    }
    .await;
    if written.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    written?;
    tracing::info!(%location, file = %target.display(), "fetched from the cluster's bucket");
    Ok(())
}

/// Writes `dir/name` durably; returns its path.
async fn write_local(dir: &Path, name: &str, text: String) -> Result<String, ArtifactError> {
    let path = dir.join(name);
    let target = path.clone();
    let io_err = |source| ArtifactError::Io {
        path: path.display().to_string(),
        source,
    };
    tokio::task::spawn_blocking(move || write_durably(&target, &text))
        .await
        .map_err(|e| io_err(std::io::Error::other(e.to_string())))?
        .map_err(io_err)?;
    Ok(path.display().to_string())
}

/// Writes a file so that it survives a crash: temporary file, fsync, rename, fsync of the
/// directory.
pub fn write_durably(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}
