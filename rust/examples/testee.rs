//! Conformance testee of the Rust binding (see tests/conformance). An example
//! of the crate, so the published crate does not carry it;
//! tests/conformance/testee-rust runs target/release/examples/testee.
//!
//! - `testee reencode`: checkpoint bytes on stdin, canonical bytes on stdout
//!   (exit 0), or one refusal line on stderr (exit 3).
//! - `testee read-store-file`: a store file on stdin, the canonical bytes of
//!   its checkpoint on stdout (exit 0), or one line on stderr: a checkpoint
//!   refusal (exit 3) or `store_file: <kind>: <detail>` (exit 4).
//! - `testee hash-trainset`: the encoding of one Term of kind `list_value` on
//!   stdin; the lowercase hex of `hash_trainset` over its items and a newline
//!   on stdout (exit 0), or one refusal line on stderr (exit 3).
//! - `testee hash-trainset-json`, `testee hash-trainset-jsonl`: JSON text
//!   (one array of examples) or JSON Lines text on stdin (FORMAT.md §6.1);
//!   the lowercase hex of its trainset hash and a newline on stdout (exit 0),
//!   or one refusal line on stderr (exit 3).
//! - `testee serve`: requests `<cmd byte><u32 BE length><payload>` on stdin
//!   (`r` reencode, `h` hash-trainset, `j` hash-trainset-json, `l`
//!   hash-trainset-jsonl, `s` read-store-file), responses
//!   `<status byte><u32 BE length><payload>` on stdout, until EOF.

use std::io::{self, ErrorKind, Read, Write};
use std::process::ExitCode;

const USAGE: &str =
    "usage: testee reencode|hash-trainset|hash-trainset-json|hash-trainset-jsonl|read-store-file|serve";

#[derive(Clone, Copy)]
enum Command {
    Reencode,
    HashTrainset,
    HashTrainsetJson,
    HashTrainsetJsonl,
    ReadStoreFile,
}

fn reencode(input: &[u8]) -> Result<Vec<u8>, String> {
    dsxir_checkpoint::decode(input)
        .map(|cp| dsxir_checkpoint::encode(&cp))
        .map_err(|e| e.to_string())
}

/// A trainset Term: the hex digest and a newline, or the refusal line.
fn hash_trainset(input: &[u8]) -> Result<Vec<u8>, String> {
    let refusal = |e: dsxir_checkpoint::InvalidCheckpoint| format!("checkpoint_shape: {e}");
    let examples = dsxir_checkpoint::decode_trainset(input).map_err(refusal)?;
    let digest = dsxir_checkpoint::hash_trainset(&examples).map_err(refusal)?;
    Ok(format!("{}\n", dsxir_checkpoint::hex(&digest)).into_bytes())
}

/// JSON or JSON Lines text: the hex digest and a newline, or the refusal
/// line.
fn hash_trainset_json(
    hash: fn(&[u8]) -> Result<[u8; 32], dsxir_checkpoint::TrainsetJsonError>,
    input: &[u8],
) -> Result<Vec<u8>, String> {
    let digest = hash(input).map_err(|e| format!("trainset_json: {e}"))?;
    Ok(format!("{}\n", dsxir_checkpoint::hex(&digest)).into_bytes())
}

/// A store file: the canonical bytes of its checkpoint, or the exit status
/// and line of its refusal.
fn read_store_file(input: &[u8]) -> Result<Vec<u8>, (u8, String)> {
    use dsxir_checkpoint::storefile::{self, Error};
    match storefile::read(input) {
        Ok(file) => Ok(dsxir_checkpoint::encode(&file.checkpoint)),
        Err(e @ Error::Corrupt(_)) => Err((4, e.to_string())),
        Err(e) => Err((3, e.to_string())),
    }
}

/// The answer to one command: the output, or the exit status and line of
/// its refusal.
fn answer(command: Command, input: &[u8]) -> Result<Vec<u8>, (u8, String)> {
    match command {
        Command::Reencode => reencode(input).map_err(|line| (3, line)),
        Command::HashTrainset => hash_trainset(input).map_err(|line| (3, line)),
        Command::HashTrainsetJson => {
            hash_trainset_json(dsxir_checkpoint::hash_trainset_json, input).map_err(|l| (3, l))
        }
        Command::HashTrainsetJsonl => {
            hash_trainset_json(dsxir_checkpoint::hash_trainset_jsonl, input).map_err(|l| (3, l))
        }
        Command::ReadStoreFile => read_store_file(input),
    }
}

fn run_once(command: Command) -> ExitCode {
    let mut input = Vec::new();
    if let Err(e) = io::stdin().lock().read_to_end(&mut input) {
        eprintln!("testee: cannot read stdin: {e}");
        return ExitCode::from(2);
    }
    match answer(command, &input) {
        Ok(out) => {
            let mut stdout = io::stdout().lock();
            if let Err(e) = stdout.write_all(&out).and_then(|()| stdout.flush()) {
                eprintln!("testee: cannot write stdout: {e}");
                return ExitCode::from(2);
            }
            ExitCode::SUCCESS
        }
        Err((status, line)) => {
            eprintln!("{line}");
            ExitCode::from(status)
        }
    }
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` at a clean EOF before the
/// first byte when `eof_ok`.
fn read_full(r: &mut impl Read, buf: &mut [u8], eof_ok: bool) -> Result<bool, String> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 && eof_ok => return Ok(false),
            Ok(0) => return Err("truncated request".into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("cannot read stdin: {e}")),
        }
    }
    Ok(true)
}

fn serve() -> Result<(), String> {
    let mut stdin = io::stdin().lock();
    let mut stdout = io::stdout().lock();
    loop {
        let mut cmd = [0u8; 1];
        if !read_full(&mut stdin, &mut cmd, true)? {
            return Ok(());
        }
        let mut len = [0u8; 4];
        read_full(&mut stdin, &mut len, false)?;
        let mut payload = vec![0u8; u32::from_be_bytes(len) as usize];
        read_full(&mut stdin, &mut payload, false)?;
        let command = match cmd[0] {
            b'r' => Command::Reencode,
            b'h' => Command::HashTrainset,
            b'j' => Command::HashTrainsetJson,
            b'l' => Command::HashTrainsetJsonl,
            b's' => Command::ReadStoreFile,
            other => return Err(format!("unsupported command {:?}", other as char)),
        };
        let (status, body) = match answer(command, &payload) {
            Ok(out) => (0u8, out),
            Err((status, line)) => (status, line.into_bytes()),
        };
        let body_len = u32::try_from(body.len()).map_err(|_| "response too long".to_string())?;
        stdout
            .write_all(&[status])
            .and_then(|()| stdout.write_all(&body_len.to_be_bytes()))
            .and_then(|()| stdout.write_all(&body))
            .and_then(|()| stdout.flush())
            .map_err(|e| format!("cannot write stdout: {e}"))?;
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["reencode"] => run_once(Command::Reencode),
        ["hash-trainset"] => run_once(Command::HashTrainset),
        ["hash-trainset-json"] => run_once(Command::HashTrainsetJson),
        ["hash-trainset-jsonl"] => run_once(Command::HashTrainsetJsonl),
        ["read-store-file"] => run_once(Command::ReadStoreFile),
        ["serve"] => match serve() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("testee: {e}");
                ExitCode::from(2)
            }
        },
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
