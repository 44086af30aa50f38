package storefile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"path/filepath"
	"testing"

	"github.com/dsxir/dsxir-checkpoint/go/checkpoint"
	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"
	"google.golang.org/protobuf/proto"
)

// recordFiles are the vectors with commit records that read.
var recordFiles = []string{"records_three", "records_intermediate_unchecked"}

// sameHead is the head of a delta that adds nothing to cp: cp without its
// trial entries.
func sameHead(cp *v1.Checkpoint) *v1.Checkpoint {
	head := proto.Clone(cp).(*v1.Checkpoint)
	head.Progress.TrialLog = nil
	return head
}

// recordStarts returns where the snapshot ends and where each record of data
// starts, read from the record headers.
func recordStarts(t *testing.T, data []byte) (int, []int) {
	t.Helper()
	at := HeaderSize + int(binary.BigEndian.Uint32(data[20:24])) + int(binary.BigEndian.Uint64(data[24:32]))
	snapshot := at
	var starts []int
	for at+RecordHeaderSize <= len(data) {
		starts = append(starts, at)
		at += RecordHeaderSize + int(binary.BigEndian.Uint32(data[at+12:at+16])) + int(binary.BigEndian.Uint32(data[at+16:at+20]))
	}
	if at != len(data) {
		t.Fatalf("the records end at %d, the file at %d", at, len(data))
	}
	return snapshot, starts
}

func mustRead(t *testing.T, data []byte) *File {
	t.Helper()
	file, err := Read(data)
	if err != nil {
		t.Fatal(err)
	}
	return file
}

func sameFile(a, b *File) bool {
	return a.Generation == b.Generation && a.Summary.Trials == b.Summary.Trials && proto.Equal(a.Checkpoint, b.Checkpoint)
}

// Every cut inside a record, the header as the payload, reads as the records
// before it: a torn tail is ignored, and End says where it starts.
func TestTornTailReadsAsTheRecordsBefore(t *testing.T) {
	for _, name := range []string{"records_three"} {
		data := readVector(t, filepath.Join("store", name+".dsxckpt"))
		_, starts := recordStarts(t, data)
		if len(starts) < 2 {
			t.Fatalf("%s: %d records", name, len(starts))
		}
		for i, start := range starts {
			end := len(data)
			if i+1 < len(starts) {
				end = starts[i+1]
			}
			before := mustRead(t, data[:start])
			if before.Records != i || before.End != start {
				t.Fatalf("%s cut at record %d: %d records, end %d", name, i, before.Records, before.End)
			}
			for n := start + 1; n < end; n++ {
				file, err := Read(data[:n])
				if err != nil {
					t.Fatalf("%s cut at %d (record %d at %d): %v", name, n, i, start, err)
				}
				if !sameFile(file, before) || file.End != start || file.Records != i {
					t.Fatalf("%s cut at %d: generation %d, %d records, end %d; want %d, %d, %d",
						name, n, file.Generation, file.Records, file.End, before.Generation, i, start)
				}
			}
			whole := mustRead(t, data[:end])
			if whole.Records != i+1 || whole.End != end || whole.Generation != before.Generation+1 {
				t.Fatalf("%s to the end of record %d: %d records, end %d, generation %d", name, i, whole.Records, whole.End, whole.Generation)
			}
		}
	}
}

// In records_intermediate_unchecked the first record makes an invalid
// checkpoint that the second sets right: cut inside a record, the file reads
// (or is refused) exactly as the records before that record.
func TestTornTailEndingAtAnInvalidCheckpoint(t *testing.T) {
	data := readVector(t, filepath.Join("store", "records_intermediate_unchecked.dsxckpt"))
	_, starts := recordStarts(t, data)
	refused := 0
	for i, start := range starts {
		end := len(data)
		if i+1 < len(starts) {
			end = starts[i+1]
		}
		before, want := Read(data[:start])
		if want != nil {
			var rm *checkpoint.ResumeMismatch
			if !errors.As(want, &rm) || rm.Reason != checkpoint.ReasonCheckpointShape {
				t.Fatalf("the records before record %d: %v", i, want)
			}
			refused++
		}
		for n := start + 1; n < end; n++ {
			file, err := Read(data[:n])
			if want != nil && (err == nil || err.Error() != want.Error()) {
				t.Fatalf("cut at %d: %v, want %v", n, err, want)
			}
			if want == nil && (err != nil || !sameFile(file, before)) {
				t.Fatalf("cut at %d: %v", n, err)
			}
		}
	}
	if refused != 1 {
		t.Fatalf("%d prefixes refused, want the one that ends with the first record", refused)
	}
	mustRead(t, data)
}

// Every single-bit flip in a record is record_checksum: never a success, and
// never a torn tail (a damaged whole record is reported wherever it is).
func TestEveryFlippedRecordBitIsRecordChecksum(t *testing.T) {
	for _, name := range recordFiles {
		data := readVector(t, filepath.Join("store", name+".dsxckpt"))
		snapshot, _ := recordStarts(t, data)
		for i := snapshot; i < len(data); i++ {
			for bit := 0; bit < 8; bit++ {
				damaged := bytes.Clone(data)
				damaged[i] ^= 1 << bit
				file, err := Read(damaged)
				var corruptFile *CorruptFile
				if !errors.As(err, &corruptFile) || corruptFile.Kind != RecordChecksum || file != nil {
					t.Fatalf("%s byte %d bit %d: want record_checksum, got %v", name, i, bit, err)
				}
			}
		}
	}
}

// Commit writes, record by record, the bytes the Python FileStore appended
// to records_three: the same delta and summary over the same checkpoint.
func TestCommitWritesTheRecordsOfTheVector(t *testing.T) {
	data := readVector(t, filepath.Join("store", "records_three.dsxckpt"))
	snapshot, starts := recordStarts(t, data)
	prev := mustRead(t, data[:snapshot])
	if !prev.Appendable || prev.Records != 0 {
		t.Fatalf("snapshot: %+v", prev)
	}
	again, err := WriteAppendable(prev.Generation, prev.Checkpoint)
	if err != nil || !bytes.Equal(again, data[:snapshot]) {
		t.Fatalf("WriteAppendable differs from the snapshot (%v)", err)
	}
	for i, start := range starts {
		end := len(data)
		if i+1 < len(starts) {
			end = starts[i+1]
		}
		next := mustRead(t, data[:end])
		rec, err := Commit(prev.Checkpoint, prev.Generation, next.Checkpoint)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if !bytes.Equal(rec, data[start:end]) {
			t.Fatalf("record %d differs:\n got %x\nwant %x", i, rec, data[start:end])
		}
		prev = next
	}
}

// appendable returns the snapshot of running_trials as an appendable file of
// generation g, and its checkpoint.
func appendable(t *testing.T, g uint64) ([]byte, *v1.Checkpoint) {
	t.Helper()
	cp := mustRead(t, validFile(t)).Checkpoint
	data, err := WriteAppendable(g, cp)
	if err != nil {
		t.Fatal(err)
	}
	return data, cp
}

// commitRecord frames a delta of head over a base of baseTrials trials.
func commitRecord(t *testing.T, generation, baseGeneration, baseTrials uint64, head *v1.Checkpoint, summaryOf *v1.Checkpoint) []byte {
	t.Helper()
	d, err := checkpoint.EncodeDelta(&v1.CheckpointDelta{Format: checkpoint.DeltaFormatV1, BaseGeneration: baseGeneration, BaseTrials: baseTrials, Head: head})
	if err != nil {
		t.Fatal(err)
	}
	summary := encodeSummary(Summary{})
	if summaryOf != nil {
		if summary, err = EncodeSummary(summaryOf); err != nil {
			t.Fatal(err)
		}
	}
	b, err := Record(generation, summary, d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A head without progress drops the trial entries before it; the next
// delta's base_trials counts from 0.
func TestHeadWithoutProgressDropsTheTrials(t *testing.T) {
	data, cp := appendable(t, 5)
	trials := uint64(len(cp.Progress.TrialLog))
	bare := proto.Clone(cp).(*v1.Checkpoint)
	bare.Progress = nil
	fresh := proto.Clone(cp).(*v1.Checkpoint)
	fresh.Progress = &v1.Progress{StartedAt: cp.Progress.StartedAt}
	file := append(bytes.Clone(data), commitRecord(t, 6, 5, trials, bare, nil)...)
	good := append(bytes.Clone(file), commitRecord(t, 7, 6, 0, fresh, fresh)...)
	got := mustRead(t, good)
	if got.Generation != 7 || got.Records != 2 || got.Summary.Trials != 0 || !proto.Equal(got.Checkpoint, fresh) {
		t.Fatalf("read %d records, generation %d: %v", got.Records, got.Generation, got.Checkpoint)
	}
	bad := append(bytes.Clone(file), commitRecord(t, 7, 6, trials, fresh, fresh)...)
	var id *checkpoint.InvalidDelta
	if _, err := Read(bad); !errors.As(err, &id) || id.Rule != checkpoint.RuleDeltaBaseTrials || id.Path != "base_trials" {
		t.Fatalf("want delta.base_trials, got %v", err)
	}
}

func wantKind(t *testing.T, data []byte, kind Kind) {
	t.Helper()
	file, err := Read(data)
	var corruptFile *CorruptFile
	if !errors.As(err, &corruptFile) || corruptFile.Kind != kind || file != nil {
		t.Fatalf("want %s, got %v", kind, err)
	}
}

// No generation follows 2^64-1: a record after it is out of sequence, not
// generation 0.
func TestNoRecordAfterTheLastGeneration(t *testing.T) {
	data, cp := appendable(t, math.MaxUint64)
	wantKind(t, append(data, commitRecord(t, 0, math.MaxUint64, uint64(len(cp.Progress.TrialLog)), sameHead(cp), cp)...), RecordGeneration)
	if _, err := Commit(cp, math.MaxUint64, cp); err == nil {
		t.Fatal("Commit after generation 2^64-1 accepted")
	}
}

// Every record is framed and checksummed before the first delta is read: a
// damaged record after one out of sequence is record_checksum.
func TestRecordsAreFramedBeforeTheyAreApplied(t *testing.T) {
	data, cp := appendable(t, 5)
	trials := uint64(len(cp.Progress.TrialLog))
	gap := commitRecord(t, 7, 5, trials, sameHead(cp), cp)
	second := commitRecord(t, 8, 7, trials, sameHead(cp), cp)
	wantKind(t, append(bytes.Clone(data), gap...), RecordGeneration)
	second[len(second)-1] ^= 1
	wantKind(t, append(append(bytes.Clone(data), gap...), second...), RecordChecksum)
}

// Lengths over the limits are over_limits, checked before a record that runs
// past the end is taken for a torn tail.
func TestRecordLengthsOverTheLimits(t *testing.T) {
	data, _ := appendable(t, 5)
	for _, at := range []int{12, 16} {
		h := make([]byte, RecordHeaderSize)
		copy(h, RecordMagic)
		binary.BigEndian.PutUint64(h[4:], 6)
		limit := uint32(MaxSummaryBytes)
		if at == 16 {
			limit = MaxBodyBytes
		}
		binary.BigEndian.PutUint32(h[at:], limit+1)
		binary.BigEndian.PutUint32(h[24:], CRC32C(h[:24]))
		wantKind(t, append(bytes.Clone(data), h...), OverLimits)
		binary.BigEndian.PutUint32(h[at:], limit)
		binary.BigEndian.PutUint32(h[24:], CRC32C(h[:24]))
		if file := mustRead(t, append(bytes.Clone(data), h...)); file.Records != 0 || file.End != len(data) {
			t.Fatalf("a header at the limit and no payload: %+v", file)
		}
	}
	if _, err := Record(1, make([]byte, MaxSummaryBytes+1), nil); err == nil {
		t.Fatal("Record accepted a summary over the limit")
	}
}

// Records after a snapshot of flags 0 are trailing bytes; a wrong record
// magic with its header CRC right is record_checksum.
func TestRecordsNeedTheFlag(t *testing.T) {
	appendableData, cp := appendable(t, 5)
	plain, err := Write(5, cp)
	if err != nil {
		t.Fatal(err)
	}
	rec := commitRecord(t, 6, 5, uint64(len(cp.Progress.TrialLog)), sameHead(cp), cp)
	wantKind(t, append(bytes.Clone(plain), rec...), TrailingBytes)
	if file := mustRead(t, append(bytes.Clone(appendableData), rec...)); file.Records != 1 || file.Generation != 6 {
		t.Fatalf("%+v", file)
	}
	rec[3] = 'x'
	binary.BigEndian.PutUint32(rec[24:], CRC32C(rec[:24]))
	wantKind(t, append(bytes.Clone(appendableData), rec...), RecordChecksum)
}
