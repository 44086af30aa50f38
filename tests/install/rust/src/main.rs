//! Reads checkpoint files with the packaged crate dsxir-checkpoint. One line
//! per file: its name, session id, status number, trial count and whether the
//! canonical re-encoding equals the bytes read.

use std::path::Path;
use std::process::exit;

fn main() {
    for arg in std::env::args().skip(1) {
        let path = Path::new(&arg);
        let data = std::fs::read(path).unwrap_or_else(|e| {
            eprintln!("{arg}: {e}");
            exit(1)
        });
        let cp = dsxir_checkpoint::decode(&data).unwrap_or_else(|e| {
            eprintln!("{arg}: {e}");
            exit(1)
        });
        let same = if dsxir_checkpoint::encode(&cp).as_deref() == Ok(&data[..]) {
            "identical"
        } else {
            "different"
        };
        let trials = cp.progress.as_ref().map_or(0, |p| p.trial_log.len());
        let name = path.file_stem().unwrap_or_default().to_string_lossy();
        println!(
            "{name} session_id={} status={} trials={trials} reencoded={same}",
            cp.session_id, cp.status
        );
    }
}
