// Package storefile reads and writes store files: the file in which the file
// store keeps the latest checkpoint of one session (<session_id>.dsxckpt).
// docs/store-file.md at the repository's top is the normative description.
//
// A store file is a 44-byte header (magic, frame version, flags, generation,
// lengths and CRC32C checksums), a JSON summary of the checkpoint and the
// canonical checkpoint bytes (the snapshot); with the header flag
// FlagAppendable, commit records follow (§9), each a 28-byte record header,
// the summary after it and a checkpoint delta (FORMAT.md §13).
//
//   - Read checks the frame and every checksum, decodes the checkpoint with
//     every validation of checkpoint.Decode, checks that the summary is the
//     checkpoint's, then applies the commit records. Frame damage is a
//     *CorruptFile naming its kind; an invalid checkpoint is a
//     *checkpoint.ResumeMismatch; a record's delta that cannot be read or
//     applied is a *checkpoint.InvalidDelta.
//   - Write and WriteAppendable return the exact bytes the Python framing
//     writes for a checkpoint committed as a generation; Record and Commit
//     return a commit record.
//   - EncodeSummary returns the canonical summary of a checkpoint.
package storefile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"strconv"

	"github.com/dsxir/dsxir-checkpoint/go/checkpoint"
	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"
)

// Constants of the frame (docs/store-file.md §1).
const (
	// Magic opens every store file: "\x89dsxir\r\n".
	Magic = "\x89dsxir\r\n"
	// FrameVersion is the only frame version this package reads and writes.
	FrameVersion = 1
	// HeaderSize is the size of the header, in bytes.
	HeaderSize = 44
	// MaxSummaryBytes is the largest summary a reader accepts (2^20).
	MaxSummaryBytes = 1 << 20
	// MaxBodyBytes is the largest body: the checkpoint size limit (2^28).
	MaxBodyBytes = checkpoint.MaxInputSize
	// SummaryVersion is the "summary" value of the summary layout.
	SummaryVersion = 1
	// FlagAppendable is the header flag of a file that commit records may
	// follow (docs/store-file.md §9); the only flag a reader accepts.
	FlagAppendable = 1
	// RecordMagic opens every commit record: "\x89dlt".
	RecordMagic = "\x89dlt"
	// RecordHeaderSize is the size of a commit record's header, in bytes.
	RecordHeaderSize = 28
)

// Kind names the frame check a damaged store file fails (docs/store-file.md §6).
type Kind string

// The kinds of damage, in the order a reader checks them.
const (
	Truncated          Kind = "truncated"
	TrailingBytes      Kind = "trailing_bytes"
	BadMagic           Kind = "bad_magic"
	HeaderChecksum     Kind = "header_checksum"
	UnsupportedVersion Kind = "unsupported_version"
	UnsupportedFlags   Kind = "unsupported_flags"
	OverLimits         Kind = "over_limits"
	SummaryChecksum    Kind = "summary_checksum"
	BodyChecksum       Kind = "body_checksum"
	SummaryMismatch    Kind = "summary_mismatch"
	RecordChecksum     Kind = "record_checksum"
	RecordGeneration   Kind = "record_generation"
)

// CorruptFile reports a damaged store file: Kind is the check that failed,
// Detail says what was found.
type CorruptFile struct {
	Kind   Kind
	Detail string
}

// Error reads "store_file: <kind>: <detail>".
func (e *CorruptFile) Error() string {
	return "store_file: " + string(e.Kind) + ": " + e.Detail
}

func corrupt(kind Kind, format string, args ...any) *CorruptFile {
	return &CorruptFile{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// Summary holds the values of a store file's summary (docs/store-file.md §3).
type Summary struct {
	SessionID string
	Optimizer string
	// Status is the status word: "running", "paused", "completed", "failed"
	// or "cancelled".
	Status           string
	UpdatedAtSeconds int64
	UpdatedAtNanos   int32
	// BestScore and BestTrialIdx are nil when the checkpoint has no best score.
	BestScore    *float64
	BestTrialIdx *uint64
	Attempts     uint64
	Completed    uint64
	Errors       uint64
	// Trials is the length of the trial log.
	Trials uint64
}

// File is a store file that passed every check of Read: the generation,
// summary and checkpoint it ends with (its last commit record's, or its
// snapshot's when it has none).
type File struct {
	Generation uint64
	Summary    Summary
	Checkpoint *v1.Checkpoint
	// Appendable tells whether the header's flags are FlagAppendable.
	Appendable bool
	// Records is the number of commit records read.
	Records int
	// End is where the snapshot and the intact records end: the file's
	// length, or less when a torn tail follows (which a store cuts off
	// before it appends a record).
	End int
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CRC32C returns the CRC-32C (Castagnoli) of data.
func CRC32C(data []byte) uint32 { return crc32.Checksum(data, castagnoli) }

// Read checks a whole store file in the order of docs/store-file.md §5 and,
// when its flags are FlagAppendable, reads its commit records (§9.2); it
// returns the generation, summary and checkpoint the file ends with.
//
// A damaged file is a *CorruptFile. A snapshot body that is not a valid
// checkpoint is the *checkpoint.ResumeMismatch (reason "checkpoint_shape")
// of checkpoint.Decode. A record's delta that cannot be read, or that is not
// of the checkpoint before it (delta.session, delta.base_trials), is the
// *checkpoint.InvalidDelta of checkpoint.DecodeDelta or
// checkpoint.MergeDelta. The checkpoint the records end with is checked by
// every rule of FORMAT.md §7 (those between records are not), a refusal
// being a *checkpoint.ResumeMismatch with that checkpoint's paths.
//
// Every record is framed and checksummed (a torn tail ignored, a damaged
// record refused) before the first delta is read, as the Python reader
// does.
func Read(data []byte) (*File, error) {
	n := uint64(len(data))
	if n < HeaderSize {
		return nil, corrupt(Truncated, "%d bytes, a header needs %d", n, HeaderSize)
	}
	if string(data[:8]) != Magic {
		return nil, corrupt(BadMagic, "not a dsxir checkpoint store file (bad magic)")
	}
	if CRC32C(data[:40]) != binary.BigEndian.Uint32(data[40:44]) {
		return nil, corrupt(HeaderChecksum, "header checksum mismatch (damaged file)")
	}
	if version := binary.BigEndian.Uint16(data[8:10]); version != FrameVersion {
		return nil, corrupt(UnsupportedVersion, "unsupported frame version %d", version)
	}
	flags := binary.BigEndian.Uint16(data[10:12])
	if flags != 0 && flags != FlagAppendable {
		return nil, corrupt(UnsupportedFlags, "unsupported frame flags 0x%04x", flags)
	}
	generation := binary.BigEndian.Uint64(data[12:20])
	summaryLength := uint64(binary.BigEndian.Uint32(data[20:24]))
	bodyLength := binary.BigEndian.Uint64(data[24:32])
	if summaryLength > MaxSummaryBytes || bodyLength > MaxBodyBytes {
		return nil, corrupt(OverLimits, "summary length %d or body length %d is over the limits (%d, %d)",
			summaryLength, bodyLength, MaxSummaryBytes, MaxBodyBytes)
	}
	total := HeaderSize + summaryLength + bodyLength
	if n < total {
		return nil, corrupt(Truncated, "file has %d bytes, its frame says %d", n, total)
	}
	if n > total && flags == 0 {
		return nil, corrupt(TrailingBytes, "file has %d bytes, its frame says %d", n, total)
	}
	summary := data[HeaderSize : HeaderSize+summaryLength]
	body := data[HeaderSize+summaryLength : total]
	if CRC32C(summary) != binary.BigEndian.Uint32(data[32:36]) {
		return nil, corrupt(SummaryChecksum, "summary checksum mismatch (damaged file)")
	}
	if CRC32C(body) != binary.BigEndian.Uint32(data[36:40]) {
		return nil, corrupt(BodyChecksum, "checkpoint checksum mismatch (damaged file)")
	}
	cp, err := checkpoint.Decode(body)
	if err != nil {
		return nil, err
	}
	values := summaryOf(cp)
	if expected := encodeSummary(values); !bytes.Equal(summary, expected) {
		return nil, corrupt(SummaryMismatch, "the summary is not the checkpoint's (%d bytes, expected %d)",
			len(summary), len(expected))
	}
	file := &File{Generation: generation, Summary: values, Checkpoint: cp, Appendable: flags == FlagAppendable, End: int(total)}
	if flags == 0 {
		return file, nil
	}
	records, end, cerr := scan(data, int(total))
	if cerr != nil {
		return nil, cerr
	}
	file.End = end
	if len(records) == 0 {
		return file, nil
	}
	for _, r := range records {
		if generation == math.MaxUint64 || r.generation != generation+1 {
			return nil, corrupt(RecordGeneration, "the record at byte %d commits generation %d after %d",
				r.offset, r.generation, generation)
		}
		delta, err := checkpoint.DecodeDelta(r.delta)
		if err != nil {
			return nil, err
		}
		if delta.GetBaseGeneration() != generation {
			return nil, corrupt(RecordGeneration, "the delta of generation %d applies to generation %d, not %d",
				r.generation, delta.GetBaseGeneration(), generation)
		}
		if err := checkpoint.MergeDelta(cp, delta); err != nil {
			return nil, err
		}
		generation = r.generation
	}
	if err := checkpoint.Validate(cp); err != nil {
		var invalid *checkpoint.InvalidCheckpoint
		if errors.As(err, &invalid) {
			return nil, &checkpoint.ResumeMismatch{SessionID: cp.GetSessionId(), Reason: checkpoint.ReasonCheckpointShape,
				Field: invalid.Path, Detail: invalid.Detail, Rule: invalid.Rule}
		}
		return nil, err
	}
	last := records[len(records)-1]
	values = summaryOf(cp)
	if expected := encodeSummary(values); !bytes.Equal(last.summary, expected) {
		return nil, corrupt(SummaryMismatch, "the summary of the record at byte %d is not the checkpoint's (%d bytes, expected %d)",
			last.offset, len(last.summary), len(expected))
	}
	file.Generation, file.Summary, file.Checkpoint, file.Records = generation, values, cp, len(records)
	return file, nil
}

// record is one intact commit record: where it starts, its generation, its
// summary and its delta bytes.
type record struct {
	offset     int
	generation uint64
	summary    []byte
	delta      []byte
}

// scan frames the commit records of data from start (docs/store-file.md §9.2
// steps 1-5) and returns the intact ones and where they end. A torn tail (a
// strict prefix of a record: fewer than RecordHeaderSize bytes, or an intact
// record header whose record runs past the end) ends the records and is not
// part of them. A wrong record magic, a record header or payload checksum
// that fails is RecordChecksum; lengths over the limits are OverLimits.
func scan(data []byte, start int) ([]record, int, *CorruptFile) {
	var out []record
	at := start
	for at < len(data) {
		if len(data)-at < RecordHeaderSize {
			break
		}
		h := data[at : at+RecordHeaderSize]
		if string(h[:4]) != RecordMagic || CRC32C(h[:24]) != binary.BigEndian.Uint32(h[24:28]) {
			return nil, 0, corrupt(RecordChecksum, "the record at byte %d: header damaged (magic or checksum)", at)
		}
		summaryLength := uint64(binary.BigEndian.Uint32(h[12:16]))
		deltaLength := uint64(binary.BigEndian.Uint32(h[16:20]))
		if summaryLength > MaxSummaryBytes || deltaLength > MaxBodyBytes {
			return nil, 0, corrupt(OverLimits, "the record at byte %d: summary length %d or delta length %d is over the limits (%d, %d)",
				at, summaryLength, deltaLength, MaxSummaryBytes, MaxBodyBytes)
		}
		end := uint64(at) + RecordHeaderSize + summaryLength + deltaLength
		if end > uint64(len(data)) {
			break
		}
		payload := data[at+RecordHeaderSize : end]
		if CRC32C(payload) != binary.BigEndian.Uint32(h[20:24]) {
			return nil, 0, corrupt(RecordChecksum, "the record at byte %d: payload checksum mismatch (damaged)", at)
		}
		out = append(out, record{
			offset:     at,
			generation: binary.BigEndian.Uint64(h[4:12]),
			summary:    payload[:summaryLength],
			delta:      payload[summaryLength:],
		})
		at = int(end)
	}
	return out, at, nil
}

// Write returns the store file of cp committed as generation, with flags 0:
// byte for byte what the Python framing writes. An invalid checkpoint, or one
// whose encoding is over MaxBodyBytes, is refused with a
// *checkpoint.InvalidCheckpoint; a summary over MaxSummaryBytes (a huge
// session id or optimizer) with an error. Nothing is returned then.
func Write(generation uint64, cp *v1.Checkpoint) ([]byte, error) {
	return write(generation, 0, cp)
}

// WriteAppendable is Write with the flags FlagAppendable: a snapshot that
// commit records may follow (docs/store-file.md §9), byte for byte what the
// Python FileStore writes when it creates or compacts a session's file.
func WriteAppendable(generation uint64, cp *v1.Checkpoint) ([]byte, error) {
	return write(generation, FlagAppendable, cp)
}

func write(generation uint64, flags uint16, cp *v1.Checkpoint) ([]byte, error) {
	body, err := checkpoint.Encode(cp)
	if err != nil {
		return nil, err
	}
	if len(body) > MaxBodyBytes {
		return nil, &checkpoint.InvalidCheckpoint{Path: checkpoint.InputPath, Rule: checkpoint.RuleInputTooLarge,
			Detail: fmt.Sprintf("%d bytes, more than the limit of %d", len(body), MaxBodyBytes)}
	}
	summary := encodeSummary(summaryOf(cp))
	if len(summary) > MaxSummaryBytes {
		return nil, fmt.Errorf("store_file: summary of %d bytes is over %d", len(summary), MaxSummaryBytes)
	}
	out := make([]byte, HeaderSize, HeaderSize+len(summary)+len(body))
	copy(out, Magic)
	binary.BigEndian.PutUint16(out[8:], FrameVersion)
	binary.BigEndian.PutUint16(out[10:], flags)
	binary.BigEndian.PutUint64(out[12:], generation)
	binary.BigEndian.PutUint32(out[20:], uint32(len(summary)))
	binary.BigEndian.PutUint64(out[24:], uint64(len(body)))
	binary.BigEndian.PutUint32(out[32:], CRC32C(summary))
	binary.BigEndian.PutUint32(out[36:], CRC32C(body))
	binary.BigEndian.PutUint32(out[40:], CRC32C(out[:40]))
	out = append(out, summary...)
	return append(out, body...), nil
}

// Record returns the bytes of one commit record (docs/store-file.md §9.1):
// the 28-byte record header, then summary and delta. It refuses lengths over
// MaxSummaryBytes or MaxBodyBytes.
func Record(generation uint64, summary, delta []byte) ([]byte, error) {
	if len(summary) > MaxSummaryBytes || len(delta) > MaxBodyBytes {
		return nil, fmt.Errorf("store_file: a record of a %d-byte summary and a %d-byte delta is over the limits (%d, %d)",
			len(summary), len(delta), MaxSummaryBytes, MaxBodyBytes)
	}
	out := make([]byte, RecordHeaderSize, RecordHeaderSize+len(summary)+len(delta))
	copy(out, RecordMagic)
	binary.BigEndian.PutUint64(out[4:], generation)
	binary.BigEndian.PutUint32(out[12:], uint32(len(summary)))
	binary.BigEndian.PutUint32(out[16:], uint32(len(delta)))
	out = append(append(out, summary...), delta...)
	binary.BigEndian.PutUint32(out[20:], CRC32C(out[RecordHeaderSize:]))
	binary.BigEndian.PutUint32(out[24:], CRC32C(out[:24]))
	return out, nil
}

// Commit returns the commit record that commits next as generation
// baseGeneration+1 over base, the checkpoint of generation baseGeneration
// (docs/store-file.md §9.3 step 1 and 3): the delta of checkpoint.NewDelta,
// encoded by checkpoint.EncodeDelta, and the summary of next. next must be a
// valid checkpoint whose trial log starts with base's. A store appends the
// record at the end of the file's intact records (File.End), cutting off a
// torn tail, and syncs it before it reports the commit.
func Commit(base *v1.Checkpoint, baseGeneration uint64, next *v1.Checkpoint) ([]byte, error) {
	if baseGeneration == math.MaxUint64 {
		return nil, fmt.Errorf("store_file: no generation follows %d", baseGeneration)
	}
	summary, err := EncodeSummary(next)
	if err != nil {
		return nil, err
	}
	delta, err := checkpoint.NewDelta(base, next, baseGeneration)
	if err != nil {
		return nil, err
	}
	b, err := checkpoint.EncodeDelta(delta)
	if err != nil {
		return nil, err
	}
	return Record(baseGeneration+1, summary, b)
}

// EncodeSummary returns the canonical summary of a valid checkpoint
// (docs/store-file.md §3), the bytes of Python's encode_summary. An invalid
// checkpoint is refused with an *checkpoint.InvalidCheckpoint.
func EncodeSummary(cp *v1.Checkpoint) ([]byte, error) {
	if err := checkpoint.Validate(cp); err != nil {
		return nil, err
	}
	return encodeSummary(summaryOf(cp)), nil
}

// encodeSummary writes the canonical JSON of s.
func encodeSummary(s Summary) []byte {
	var b bytes.Buffer
	b.WriteString(`{"attempts":`)
	b.WriteString(strconv.FormatUint(s.Attempts, 10))
	b.WriteString(`,"best_score":`)
	if s.BestScore == nil {
		b.WriteString("null")
	} else {
		fmt.Fprintf(&b, `"%016x"`, math.Float64bits(*s.BestScore))
	}
	b.WriteString(`,"best_trial_idx":`)
	if s.BestTrialIdx == nil {
		b.WriteString("null")
	} else {
		b.WriteString(strconv.FormatUint(*s.BestTrialIdx, 10))
	}
	b.WriteString(`,"completed":`)
	b.WriteString(strconv.FormatUint(s.Completed, 10))
	b.WriteString(`,"errors":`)
	b.WriteString(strconv.FormatUint(s.Errors, 10))
	b.WriteString(`,"optimizer":`)
	writeString(&b, s.Optimizer)
	b.WriteString(`,"session_id":`)
	writeString(&b, s.SessionID)
	b.WriteString(`,"status":`)
	writeString(&b, s.Status)
	b.WriteString(`,"summary":`)
	b.WriteString(strconv.Itoa(SummaryVersion))
	b.WriteString(`,"trials":`)
	b.WriteString(strconv.FormatUint(s.Trials, 10))
	b.WriteString(`,"updated_at":[`)
	b.WriteString(strconv.FormatInt(s.UpdatedAtSeconds, 10))
	b.WriteString(",")
	b.WriteString(strconv.FormatInt(int64(s.UpdatedAtNanos), 10))
	b.WriteString("]}")
	return b.Bytes()
}

// summaryOf returns the summary values of a valid checkpoint.
func summaryOf(cp *v1.Checkpoint) Summary {
	p := cp.GetProgress()
	s := Summary{
		SessionID:        cp.GetSessionId(),
		Optimizer:        cp.GetOptimizer(),
		Status:           checkpoint.StatusName(cp.GetStatus()),
		UpdatedAtSeconds: cp.GetUpdatedAt().GetSeconds(),
		UpdatedAtNanos:   cp.GetUpdatedAt().GetNanos(),
		Attempts:         p.GetAttempts(),
		Completed:        p.GetCompleted(),
		Errors:           p.GetErrors(),
		Trials:           uint64(len(p.GetTrialLog())),
	}
	if p.BestScore != nil {
		score := p.GetBestScore()
		s.BestScore = &score
	}
	if p.BestTrialIdx != nil {
		idx := p.GetBestTrialIdx()
		s.BestTrialIdx = &idx
	}
	return s
}

// writeString writes s as a JSON string the way Python's json.dumps with
// ensure_ascii=False does: only '"', '\\' and characters below U+0020 are
// escaped (\b \t \n \f \r, else \u00xx in lowercase); every other byte of
// the (valid UTF-8) string is written as it is.
func writeString(b *bytes.Buffer, s string) {
	const hexDigits = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\f':
			b.WriteString(`\f`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if c < 0x20 {
				b.WriteString(`\u00`)
				b.WriteByte(hexDigits[c>>4])
				b.WriteByte(hexDigits[c&0xf])
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
}
