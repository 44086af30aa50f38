//! The errors of the library. Their messages read the same as in the other
//! bindings of the format (FORMAT.md §8 gives the resume gate's texts).

use std::fmt;

/// The reason of a [`ResumeMismatch`] for bytes that are not a valid
/// checkpoint (the only reason [`crate::decode`] reports).
pub const CHECKPOINT_SHAPE: &str = "checkpoint_shape";
/// The reason of a [`ResumeMismatch`] for bytes that are not a valid delta
/// (FORMAT.md §13.1), or a delta that does not apply to its base (§13.2).
pub const DELTA_SHAPE: &str = "delta_shape";
/// Resume gate reason: the checkpoint was written by another optimizer.
pub const REASON_OPTIMIZER: &str = "optimizer";
/// Resume gate reason: the checkpoint's sampler module differs.
pub const REASON_SAMPLER_FORMAT: &str = "sampler_format";
/// Resume gate reason: the checkpoint's sampler version is not accepted.
pub const REASON_SAMPLER_VERSION: &str = "sampler_version";
/// Resume gate reason: the checkpoint was made on another trainset.
pub const REASON_TRAINSET_HASH: &str = "trainset_hash";
/// Resume gate reason: the checkpoint's scores are better in the other
/// direction.
pub const REASON_DIRECTION: &str = "direction";

/// A value named by a [`ResumeMismatch`] (what the caller expected, what the
/// checkpoint holds), shown as FORMAT.md §8 says: hashes in lowercase hex, a
/// set of accepted versions as `[v1,v2,…]` in ascending order, a missing
/// value as `none`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateValue {
    /// No value (`none`).
    None,
    /// A name: an optimizer, a sampler module or a direction.
    Text(String),
    /// One sampler version.
    Version(u32),
    /// A set of sampler versions, kept in ascending order without repeats.
    Versions(Vec<u32>),
    /// A trainset hash.
    Hash(Vec<u8>),
}

impl fmt::Display for GateValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GateValue::None => f.write_str("none"),
            GateValue::Text(text) => f.write_str(text),
            GateValue::Version(v) => write!(f, "{v}"),
            GateValue::Versions(vs) => {
                f.write_str("[")?;
                for (i, v) in vs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            GateValue::Hash(bytes) => f.write_str(&hex(bytes)),
        }
    }
}

/// Lowercase hexadecimal of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// A checkpoint that cannot be used to resume a session.
///
/// With `reason == "checkpoint_shape"` ([`crate::decode`]) the bytes are not a
/// valid checkpoint: `field` is the path of the offending field (FORMAT.md
/// §7, e.g. `progress.trial_log[3].stats.entries[0].key`, or `<input>` for a
/// size or parse failure), `detail` says what is wrong with it, `rule` is the
/// id of the broken rule (a constant of [`crate::rules`], e.g. `trial.status`)
/// and `session_id` is the session id read, if any. It displays as
/// `checkpoint_shape: <field>: <detail> (rule <id>)`, the refusal line of the
/// testee.
///
/// With `reason == "delta_shape"` ([`crate::decode_delta`],
/// [`crate::apply_delta`]) the bytes are not a valid delta, or the delta
/// does not apply to its base (FORMAT.md §13): `field`, `detail` and `rule`
/// as above (`rule` a constant of [`crate::delta_rules`], or of
/// [`crate::rules`] for the byte grammar); it displays as
/// `delta_shape: <field>: <detail> (rule <id>)`.
///
/// Otherwise ([`crate::check_resume`]) the reason is one of `optimizer`,
/// `sampler_format`, `sampler_version`, `trainset_hash` or `direction`; [`Self::expected`]
/// is the caller's value, [`Self::got`] the checkpoint's, and the message is the text of
/// FORMAT.md §8: `cannot resume session "<id>": <reason>: …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeMismatch {
    pub session_id: Option<String>,
    pub reason: &'static str,
    /// The offending field (`checkpoint_shape` and `delta_shape` only; empty
    /// otherwise).
    pub field: String,
    /// What is wrong with it (`checkpoint_shape` and `delta_shape` only; empty
    /// otherwise).
    pub detail: String,
    /// The id of the broken rule, a constant of [`crate::rules`]
    /// or [`crate::delta_rules`] (`checkpoint_shape` and `delta_shape` only;
    /// `None` otherwise).
    pub rule: Option<&'static str>,
    /// (expected, got) of a gate reason; boxed to keep errors small.
    values: Option<Box<(GateValue, GateValue)>>,
}

impl ResumeMismatch {
    /// A refusal of checkpoint bytes: `field` breaks `rule` (of [`crate::rules`]).
    pub(crate) fn shape(rule: &'static str, field: String, detail: impl Into<String>) -> Self {
        ResumeMismatch {
            session_id: None,
            reason: CHECKPOINT_SHAPE,
            field,
            detail: detail.into(),
            rule: Some(rule),
            values: None,
        }
    }

    /// A refusal of a delta (FORMAT.md §13): `field` breaks `rule` (of
    /// [`crate::delta_rules`], or a grammar rule of [`crate::rules`]).
    pub(crate) fn delta_shape(
        rule: &'static str,
        field: String,
        detail: impl Into<String>,
    ) -> Self {
        ResumeMismatch {
            reason: DELTA_SHAPE,
            ..ResumeMismatch::shape(rule, field, detail)
        }
    }

    pub(crate) fn gate(
        session_id: &str,
        reason: &'static str,
        expected: GateValue,
        got: GateValue,
    ) -> Self {
        ResumeMismatch {
            session_id: Some(session_id.to_string()),
            reason,
            field: String::new(),
            detail: String::new(),
            rule: None,
            values: Some(Box::new((expected, got))),
        }
    }

    /// What the caller asked for ([`GateValue::None`] for `checkpoint_shape`).
    pub fn expected(&self) -> &GateValue {
        self.values.as_ref().map_or(&GateValue::None, |v| &v.0)
    }

    /// What the checkpoint holds ([`GateValue::None`] for `checkpoint_shape`).
    pub fn got(&self) -> &GateValue {
        self.values.as_ref().map_or(&GateValue::None, |v| &v.1)
    }
}

impl fmt::Display for ResumeMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reason == CHECKPOINT_SHAPE || self.reason == DELTA_SHAPE {
            write!(f, "{}: {}: {}", self.reason, self.field, self.detail)?;
            return write_rule(f, self.rule);
        }
        let (got, exp) = (self.got(), self.expected());
        write!(
            f,
            "cannot resume session \"{}\": {}: ",
            self.session_id.as_deref().unwrap_or(""),
            self.reason
        )?;
        match self.reason {
            REASON_OPTIMIZER => write!(
                f,
                "the checkpoint was written by optimizer {got}; this run is {exp}. \
                 Resume with {got}, or start a new session."
            ),
            REASON_SAMPLER_FORMAT => write!(
                f,
                "the checkpoint's sampler is {got}; this run's is {exp}. \
                 Resume with sampler {got}, or start a new session."
            ),
            REASON_SAMPLER_VERSION => write!(
                f,
                "the checkpoint holds sampler state version {got}; this run accepts {exp}. \
                 Accept version {got} if the sampler can read it, or start a new session."
            ),
            REASON_TRAINSET_HASH => write!(
                f,
                "the checkpoint was made on the trainset with hash {got}; this run's hash is \
                 {exp}. Pass the same trainset, or start a new session."
            ),
            REASON_DIRECTION => write!(
                f,
                "the checkpoint's scores are better when {got}; this run's are better when \
                 {exp}. Resume with direction {got}, or start a new session."
            ),
            _ => write!(f, "the checkpoint has {got}; this run expects {exp}."),
        }
    }
}

impl std::error::Error for ResumeMismatch {}

/// The session has ended (completed, failed or cancelled); it cannot go on.
/// `status` is the status name (see [`crate::status_name`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlreadyTerminal {
    pub session_id: String,
    pub status: &'static str,
}

impl fmt::Display for AlreadyTerminal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "session \"{}\" is already terminal: status={}",
            self.session_id, self.status
        )
    }
}

impl std::error::Error for AlreadyTerminal {}

/// A transition that the session's current (non-terminal) status does not
/// allow (FORMAT.md §9); `action` is e.g. `pause` or `record a trial`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidTransition {
    pub session_id: String,
    pub status: &'static str,
    pub action: &'static str,
}

impl fmt::Display for InvalidTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "session \"{}\" cannot {} while {}",
            self.session_id, self.action, self.status
        )
    }
}

impl std::error::Error for InvalidTransition {}

/// ` (rule <id>)` after a refusal that names a rule.
fn write_rule(f: &mut fmt::Formatter<'_>, rule: Option<&str>) -> fmt::Result {
    match rule {
        Some(rule) => write!(f, " (rule {rule})"),
        None => Ok(()),
    }
}

/// A value meant for a checkpoint (or a Term given to a converter) breaks a
/// rule of FORMAT.md. `path` names the offending element, e.g.
/// `value[2]["k"]`, `trainset[3]["meta"][0]`, `score` or
/// `term.list_value.items[1].float_value`; `detail` says what is wrong;
/// `rule` is the id of the broken rule (a constant of [`crate::rules`], e.g.
/// `float.nan`). It displays as `<path>: <detail> (rule <id>)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidCheckpoint {
    pub path: String,
    pub detail: String,
    /// The id of the broken rule. Every refusal of this crate names one; it
    /// is an `Option`, as [`ResumeMismatch::rule`] is, for a refusal that
    /// breaks no rule of the format.
    pub rule: Option<&'static str>,
}

impl InvalidCheckpoint {
    pub(crate) fn new(
        rule: &'static str,
        path: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        InvalidCheckpoint {
            path: path.into(),
            detail: detail.into(),
            rule: Some(rule),
        }
    }
}

impl fmt::Display for InvalidCheckpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.detail)?;
        write_rule(f, self.rule)
    }
}

impl std::error::Error for InvalidCheckpoint {}

/// Any error of the resume gate and the transitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointError {
    AlreadyTerminal(AlreadyTerminal),
    InvalidTransition(InvalidTransition),
    ResumeMismatch(ResumeMismatch),
    InvalidCheckpoint(InvalidCheckpoint),
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointError::AlreadyTerminal(e) => e.fmt(f),
            CheckpointError::InvalidTransition(e) => e.fmt(f),
            CheckpointError::ResumeMismatch(e) => e.fmt(f),
            CheckpointError::InvalidCheckpoint(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for CheckpointError {}

impl From<AlreadyTerminal> for CheckpointError {
    fn from(e: AlreadyTerminal) -> Self {
        CheckpointError::AlreadyTerminal(e)
    }
}

impl From<InvalidTransition> for CheckpointError {
    fn from(e: InvalidTransition) -> Self {
        CheckpointError::InvalidTransition(e)
    }
}

impl From<ResumeMismatch> for CheckpointError {
    fn from(e: ResumeMismatch) -> Self {
        CheckpointError::ResumeMismatch(e)
    }
}

impl From<InvalidCheckpoint> for CheckpointError {
    fn from(e: InvalidCheckpoint) -> Self {
        CheckpointError::InvalidCheckpoint(e)
    }
}
