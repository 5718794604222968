//! The data directory and everything the server writes into it are for
//! the server's user only: the database and its WAL (documents, accounts),
//! the mail outbox (live sign-in links), the generated token secret. Run
//! against the real binary, as an operator would start it.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use support::*;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every file and directory under `dir`, with its mode.
fn tree(dir: &Path) -> Vec<(std::path::PathBuf, u32)> {
    let mut out = vec![(dir.to_path_buf(), mode(dir))];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(tree(&path));
        } else {
            out.push((path.clone(), mode(&path)));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_and_its_files_are_private_even_when_they_were_not() {
    let mut server = ProcessServer::start(&[]).await;
    let dir = server.data_dir().to_path_buf();
    // Something that writes a mail and the database.
    let url = format!("http://{}/api/auth/register", server.addr);
    let resp = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .body(
            serde_json::json!({
                "email": "ada@example.com", "password": "correct horse 9", "name": "Ada"
            })
            .to_string(),
        )
        .send()
        .await
        .expect("register");
    assert_eq!(resp.status().as_u16(), 201);
    let files = tree(&dir);
    for name in ["coform.db", "jwt-secret", "secrets-key", "outbox"] {
        assert!(
            files
                .iter()
                .any(|(p, _)| p.file_name().is_some_and(|f| f == name)),
            "{name} missing from {files:?}"
        );
    }
    assert!(files
        .iter()
        .any(|(p, _)| p.extension().is_some_and(|e| e == "eml")));
    for (path, m) in &files {
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(*m, want, "{} is {m:o}", path.display());
    }

    // Files an older version left readable by everyone are tightened at
    // the next start.
    server.terminate().await;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for (path, _) in tree(&dir) {
        let m = if path.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(m)).unwrap();
    }
    server.restart().await;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("outbox")), 0o700);
    for file in [
        "coform.db",
        "coform.db-wal",
        "coform.db-shm",
        "coform.lock",
        "jwt-secret",
        "secrets-key",
    ] {
        let path = dir.join(file);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{file}");
        }
    }
}
