// Package checkpoint reads, writes and checks dsxir optimizer-session
// checkpoints (FORMAT.md at the repository's top is the normative
// description).
//
//   - Decode checks checkpoint bytes by the byte grammar of FORMAT.md §2
//     (size, CRC-32C trailer, strict scan of the body, weight), parses them
//     and applies every validation of FORMAT.md §7 in its order; a refusal
//     is a *ResumeMismatch with reason "checkpoint_shape" naming the
//     offending field (or message) and the id of the rule it breaks (Rule,
//     one of the constants of rules.go). It accepts only canonical bytes:
//     Encode(Decode(b)) is b.
//   - Encode validates a checkpoint, refuses credentials (FORMAT.md §10:
//     Screen; EncodeRedacted and Redact redact them instead) and writes its
//     canonical encoding (FORMAT.md §2), trailer included, after checking it
//     by the same grammar. Decode does not screen.
//   - ToTerm and FromTerm convert between Go values and Terms; HashTrainset
//     fingerprints a trainset (FORMAT.md §6).
//   - DecodeDelta, EncodeDelta, ApplyDelta and NewDelta read, write, apply
//     and make checkpoint deltas (FORMAT.md §13); a refusal of a delta is an
//     *InvalidDelta naming its path and rule (delta_rules.go).
//   - CheckResume is the resume gate (FORMAT.md §8).
//   - RecordTrial, Pause, Resume, Cancel, Complete and Fail are the
//     transitions of FORMAT.md §9 (*AlreadyTerminal, *InvalidTransition);
//     FromTermMap converts stats, errors and artifacts.
package checkpoint
