//! `fly execute` uploads come from users: their size is capped (packed and
//! unpacked), their entries cannot land outside the artifact, setuid and
//! setgid bits are dropped, and refusals name the entry, not server paths.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use crate::on_both_backends;
use crate::support::{Backend, TestServer, local_runtime, server_options_with};

const MAX_COMPRESSED: u64 = 8 << 20;
const MAX_UNPACKED: u64 = 16 << 20;

/// A server whose uploads may be 8 MiB packed and 16 MiB unpacked, and
/// where its runtime keeps them.
async fn server(backend: Backend) -> (TestServer, tempfile::TempDir) {
    let (runtime, work) = local_runtime().await;
    let mut options = server_options_with(runtime, &[]);
    options.upload_limits =
        atc::runtime::UploadLimits { max_compressed_bytes: MAX_COMPRESSED, max_unpacked_bytes: MAX_UNPACKED };
    (TestServer::start_with(backend, options).await, work)
}

enum Entry<'a> {
    File(&'a str, u32),
    Dir(&'a str, u32),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
}

/// A gzipped tarball written header by header, so that names `tar::Builder`
/// refuses to write (`../x`, `/x`) can be.
fn raw_tgz(entries: &[Entry]) -> Vec<u8> {
    let mut tar = Vec::new();
    for entry in entries {
        let (name, kind, mode, link) = match *entry {
            Entry::File(name, mode) => (name, tar::EntryType::Regular, mode, ""),
            Entry::Dir(name, mode) => (name, tar::EntryType::Directory, mode, ""),
            Entry::Symlink(name, target) => (name, tar::EntryType::Symlink, 0o777, target),
            Entry::HardLink(name, target) => (name, tar::EntryType::Link, 0o644, target),
        };
        let data: &[u8] = if matches!(entry, Entry::File(..)) { b"contents\n" } else { b"" };
        let mut header = tar::Header::new_gnu();
        let gnu = header.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_cksum();
        tar.extend_from_slice(header.as_bytes());
        tar.extend_from_slice(data);
        tar.resize(tar.len().next_multiple_of(512), 0);
    }
    tar.extend_from_slice(&[0; 1024]);
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all(&tar).unwrap();
    gzip.finish().unwrap()
}

/// A tarball of one file of `size` zero bytes, gzipped: it weighs a
/// thousandth of what it unpacks to.
fn gzip_bomb(size: u64) -> Vec<u8> {
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut header = tar::Header::new_gnu();
    header.set_path("zeros").unwrap();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_cksum();
    gzip.write_all(header.as_bytes()).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..size / zeros.len() as u64 {
        gzip.write_all(&zeros).unwrap();
    }
    gzip.write_all(&[0; 1024]).unwrap();
    gzip.finish().unwrap()
}

async fn upload(server: &TestServer, token: &str, body: reqwest::Body) -> reqwest::Response {
    server.request(Method::POST, "/api/v1/teams/main/artifacts", Some(token)).body(body).send().await.unwrap()
}

async fn error_of(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["errors"][0].as_str().unwrap_or_default().to_string()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries.flatten().map(|e| e.path()).collect()
}

fn bytes_under(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => bytes_under(&entry.path()),
            _ => entry.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

async fn a_gzip_bomb_is_refused_before_it_is_unpacked(backend: Backend) {
    let (server, work) = server(backend).await;
    let token = server.admin_token().await;
    let bomb = gzip_bomb(1 << 30);
    assert!((bomb.len() as u64) < MAX_COMPRESSED / 4, "the bomb weighs {} bytes", bomb.len());

    // Watch how much the artifacts grow while the bomb is handled.
    let artifacts = work.path().join("artifacts");
    let (largest, done) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
    let sampler = {
        let (largest, done) = (largest.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                largest.fetch_max(bytes_under(&artifacts), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let response = upload(&server, &token, bomb.into()).await;
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(error_of(response).await, format!("the upload unpacks to more than {MAX_UNPACKED} bytes"));
    assert!(largest.load(Ordering::Relaxed) <= MAX_UNPACKED, "unpacked {} bytes", largest.load(Ordering::Relaxed));
    assert_eq!(files_under(&work.path().join("artifacts")), Vec::<PathBuf>::new(), "nothing of it is kept");
    assert_eq!(files_under(&work.path().join("uploads")), Vec::<PathBuf>::new());
    assert_eq!(server.test_db.count("SELECT COUNT(*) FROM artifacts").await, 0);
    server.stop().await;
}

async fn uploads_larger_than_the_limit_are_refused_while_received(backend: Backend) {
    let (server, work) = server(backend).await;
    let token = server.admin_token().await;
    let too_big = vec![7u8; MAX_COMPRESSED as usize + 1];
    // Announced by Content-Length: refused before it is read.
    let announced = upload(&server, &token, too_big.clone().into()).await;
    assert_eq!(announced.status(), 413);
    assert_eq!(error_of(announced).await, format!("the upload is larger than {MAX_COMPRESSED} bytes"));
    // Streamed without a length: refused once that much has arrived.
    let chunks = too_big.chunks(1 << 20).map(|c| Ok::<_, std::io::Error>(c.to_vec())).collect::<Vec<_>>();
    let streamed = upload(&server, &token, reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))).await;
    assert_eq!(streamed.status(), 413);
    assert_eq!(error_of(streamed).await, format!("the upload is larger than {MAX_COMPRESSED} bytes"));
    assert_eq!(files_under(&work.path().join("uploads")), Vec::<PathBuf>::new(), "the spooled part is removed");
    server.stop().await;
}

async fn uploads_lose_setuid_and_setgid_bits(backend: Backend) {
    let (server, _work) = server(backend).await;
    let token = server.admin_token().await;
    let tgz = raw_tgz(&[
        Entry::Dir("bin", 0o3775),
        Entry::File("bin/tool", 0o6755),
        Entry::File("plain", 0o640),
        Entry::Symlink("bin/alias", "tool"),
    ]);
    let response = upload(&server, &token, tgz.into()).await;
    assert_eq!(response.status(), 201);
    let artifact: Value = response.json().await.unwrap();
    let download = server.get(&format!("/api/v1/teams/main/artifacts/{}", artifact["id"]), Some(&token)).await;
    let bytes = download.bytes().await.unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let mut modes: Vec<(String, u32)> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| !e.header().entry_type().is_symlink())
        .map(|e| (e.path().unwrap().display().to_string(), e.header().mode().unwrap() & 0o7777))
        .filter(|(path, _)| path != "./")
        .collect();
    modes.sort();
    assert_eq!(modes, [("bin".to_string(), 0o775), ("bin/tool".into(), 0o755), ("plain".into(), 0o640)]);
    server.stop().await;
}

async fn uploads_cannot_reach_outside_the_artifact(backend: Backend) {
    let (server, work) = server(backend).await;
    let token = server.admin_token().await;
    let cases: &[(&[Entry], &str)] = &[
        (&[Entry::File("../escape", 0o644)], "'../escape' is outside the upload"),
        (&[Entry::File("a/../../escape", 0o644)], "'a/../../escape' is outside the upload"),
        (&[Entry::File("/tmp/escape", 0o644)], "'/tmp/escape' is outside the upload"),
        (&[Entry::Symlink("etc", "/etc")], "'etc' is a symbolic link to '/etc', outside the upload"),
        (&[Entry::Symlink("d/up", "../../..")], "'d/up' is a symbolic link to '../../..', outside the upload"),
        (
            &[Entry::HardLink("passwd", "../../../etc/passwd")],
            "'passwd' is a hard link to '../../../etc/passwd', outside the upload",
        ),
        (
            // Made before `b` exists, `a` stays inside; `b` then makes it lead out.
            &[Entry::Symlink("a", "b/../escape"), Entry::Symlink("b", "."), Entry::Dir("c", 0o755)],
            "'a' is a symbolic link to 'b/../escape', which leads outside the upload",
        ),
        (
            &[Entry::Symlink("here", "."), Entry::Symlink("x/out", "../here/.."), Entry::File("x/out/escape", 0o644)],
            "'x/out' is a symbolic link to '../here/..', outside the upload",
        ),
    ];
    for (entries, expected) in cases {
        let response = upload(&server, &token, raw_tgz(entries).into()).await;
        assert_eq!(response.status(), 400, "{expected}");
        let message = error_of(response).await;
        assert_eq!(message, format!("the upload cannot be stored: {expected}"));
        assert!(!message.contains(&work.path().display().to_string()), "no server paths: {message}");
    }
    assert_eq!(files_under(&work.path().join("artifacts")), Vec::<PathBuf>::new(), "nothing was kept");
    let escaped: Vec<PathBuf> = [work.path().join("escape"), work.path().parent().unwrap().join("escape")]
        .into_iter()
        .filter(|p| p.exists())
        .collect();
    assert!(escaped.is_empty(), "{escaped:?}");
    server.stop().await;
}

on_both_backends!(
    a_gzip_bomb_is_refused_before_it_is_unpacked,
    uploads_larger_than_the_limit_are_refused_while_received,
    uploads_lose_setuid_and_setgid_bits,
    uploads_cannot_reach_outside_the_artifact,
);
