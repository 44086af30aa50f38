package storefile

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dsxir/dsxir-checkpoint/go/checkpoint"
	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"
	"google.golang.org/protobuf/proto"
)

// vectorsDir holds the golden vectors shared by every implementation.
var vectorsDir = filepath.Join("..", "..", "tests", "vectors")

// vector is one line of tests/vectors/store/manifest.jsonl.
type vector struct {
	Name       string `json:"name"`
	File       string `json:"file"`
	Verdict    string `json:"verdict"`
	Generation string `json:"generation"`
	Checkpoint string `json:"checkpoint"`
	KnownOnly  string `json:"known_only"`
	Kind       string `json:"kind"`
	Field      string `json:"field"`
	Rule       string `json:"rule"`
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	f, err := os.Open(filepath.Join(vectorsDir, "store", "manifest.jsonl"))
	if err != nil {
		t.Fatalf("reading the store vector manifest: %v", err)
	}
	defer f.Close()
	var out []vector
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		var v vector
		if err := json.Unmarshal(lines.Bytes(), &v); err != nil {
			t.Fatalf("parsing %q: %v", lines.Text(), err)
		}
		out = append(out, v)
	}
	if err := lines.Err(); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, v := range out {
		counts[v.Verdict]++
	}
	if counts["ok"] < 10 || counts["damaged"] < 20 || counts["checkpoint_refused"] < 3 || counts["delta_refused"] < 2 || len(counts) != 4 {
		t.Fatalf("the store manifest lacks vectors of some verdict: %v", counts)
	}
	return out
}

func readVector(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorsDir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			data := readVector(t, v.File)
			file, err := Read(data)
			switch v.Verdict {
			case "ok":
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if got := strconv.FormatUint(file.Generation, 10); got != v.Generation {
					t.Fatalf("generation %s, want %s", got, v.Generation)
				}
				body, err := checkpoint.Encode(file.Checkpoint)
				if err != nil {
					t.Fatal(err)
				}
				if want := readVector(t, v.Checkpoint); !bytes.Equal(body, want) {
					t.Fatalf("checkpoint differs:\n got %x\nwant %x", body, want)
				}
				write := Write
				if file.Appendable {
					write = WriteAppendable
				}
				again, err := write(file.Generation, file.Checkpoint)
				if err != nil {
					t.Fatalf("Write: %v", err)
				}
				if file.Records == 0 {
					if !bytes.Equal(again, data) {
						t.Fatalf("Write differs from the file:\n got %x\nwant %x", again, data)
					}
					checkSummary(t, file, data)
				} else {
					// A file with records reads as the snapshot of what they make.
					back, err := Read(again)
					if err != nil || back.Generation != file.Generation || !proto.Equal(back.Checkpoint, file.Checkpoint) || back.Summary.Trials != file.Summary.Trials {
						t.Fatalf("its snapshot read back: %v", err)
					}
					checkSummary(t, back, again)
				}
			case "damaged":
				var damaged *CorruptFile
				if !errors.As(err, &damaged) {
					t.Fatalf("want a *CorruptFile of kind %s, got %v", v.Kind, err)
				}
				if string(damaged.Kind) != v.Kind {
					t.Fatalf("kind %s, want %s (%v)", damaged.Kind, v.Kind, err)
				}
				if !strings.HasPrefix(err.Error(), "store_file: "+v.Kind+": ") {
					t.Fatalf("message %q", err)
				}
			case "checkpoint_refused":
				var refused *checkpoint.ResumeMismatch
				if !errors.As(err, &refused) || refused.Reason != checkpoint.ReasonCheckpointShape {
					t.Fatalf("want a checkpoint_shape refusal at %s, got %v", v.Field, err)
				}
				if refused.Field != v.Field || (v.Rule != "" && refused.Rule != v.Rule) {
					t.Fatalf("field %s rule %s, want %s %s", refused.Field, refused.Rule, v.Field, v.Rule)
				}
			case "delta_refused":
				var refused *checkpoint.InvalidDelta
				if !errors.As(err, &refused) {
					t.Fatalf("want a delta_shape refusal at %s, got %v", v.Field, err)
				}
				if refused.Path != v.Field || refused.Rule != v.Rule {
					t.Fatalf("path %s rule %s, want %s %s", refused.Path, refused.Rule, v.Field, v.Rule)
				}
				if !strings.HasPrefix(err.Error(), "delta_shape: "+v.Field+": ") || !strings.HasSuffix(err.Error(), " (rule "+v.Rule+")") {
					t.Fatalf("message %q", err)
				}
			default:
				t.Fatalf("unknown verdict %q", v.Verdict)
			}
			if err != nil && file != nil {
				t.Fatal("a refused file returned a result")
			}
		})
	}
}

// checkSummary compares the summary Read returns with the JSON in the file.
func checkSummary(t *testing.T, file *File, data []byte) {
	t.Helper()
	length := binary.BigEndian.Uint32(data[20:24])
	var raw map[string]any
	dec := json.NewDecoder(bytes.NewReader(data[HeaderSize : HeaderSize+length]))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		t.Fatalf("the summary is not JSON: %v", err)
	}
	s := file.Summary
	if raw["session_id"] != s.SessionID || raw["optimizer"] != s.Optimizer || raw["status"] != s.Status {
		t.Fatalf("summary strings differ: %v vs %+v", raw, s)
	}
	for key, want := range map[string]uint64{
		"attempts": s.Attempts, "completed": s.Completed, "errors": s.Errors, "trials": s.Trials,
	} {
		if raw[key] != json.Number(strconv.FormatUint(want, 10)) {
			t.Fatalf("summary %s is %v, want %d", key, raw[key], want)
		}
	}
	if (raw["best_score"] == nil) != (s.BestScore == nil) || (raw["best_trial_idx"] == nil) != (s.BestTrialIdx == nil) {
		t.Fatalf("best score presence differs: %v vs %+v", raw, s)
	}
	stamp := raw["updated_at"].([]any)
	if stamp[0] != json.Number(strconv.FormatInt(s.UpdatedAtSeconds, 10)) ||
		stamp[1] != json.Number(strconv.FormatInt(int64(s.UpdatedAtNanos), 10)) {
		t.Fatalf("updated_at %v, want %d %d", stamp, s.UpdatedAtSeconds, s.UpdatedAtNanos)
	}
}

func validFile(t *testing.T) []byte {
	t.Helper()
	return readVector(t, filepath.Join("store", "running_trials.dsxckpt"))
}

func TestCRC32CCheckValue(t *testing.T) {
	if got := CRC32C([]byte("123456789")); got != 0xE3069283 {
		t.Fatalf("CRC32C(123456789) = %08x", got)
	}
	if got := CRC32C(nil); got != 0 {
		t.Fatalf("CRC32C() = %08x", got)
	}
}

func TestEveryFlippedBitIsRefused(t *testing.T) {
	good := validFile(t)
	for i := range good {
		for bit := 0; bit < 8; bit++ {
			damaged := bytes.Clone(good)
			damaged[i] ^= 1 << bit
			var corruptFile *CorruptFile
			if _, err := Read(damaged); !errors.As(err, &corruptFile) {
				t.Fatalf("byte %d bit %d: want a *CorruptFile, got %v", i, bit, err)
			}
		}
	}
}

func TestEveryTruncationIsRefused(t *testing.T) {
	good := validFile(t)
	for n := range len(good) {
		_, err := Read(good[:n])
		var corruptFile *CorruptFile
		if !errors.As(err, &corruptFile) || corruptFile.Kind != Truncated {
			t.Fatalf("%d bytes: want truncated, got %v", n, err)
		}
	}
}

func TestWriteRefusesAnInvalidCheckpoint(t *testing.T) {
	file, err := Read(validFile(t))
	if err != nil {
		t.Fatal(err)
	}
	cp := proto.Clone(file.Checkpoint).(*v1.Checkpoint)
	cp.Progress.Completed++
	var invalid *checkpoint.InvalidCheckpoint
	if _, err := Write(1, cp); !errors.As(err, &invalid) || invalid.Path != "progress.completed" {
		t.Fatalf("want an InvalidCheckpoint at progress.completed, got %v", err)
	}
	if _, err := EncodeSummary(cp); !errors.As(err, &invalid) {
		t.Fatalf("EncodeSummary: want an InvalidCheckpoint, got %v", err)
	}
}

func TestWriteRefusesASummaryOverTheLimit(t *testing.T) {
	file, err := Read(validFile(t))
	if err != nil {
		t.Fatal(err)
	}
	cp := proto.Clone(file.Checkpoint).(*v1.Checkpoint)
	cp.Optimizer = strings.Repeat("x", MaxSummaryBytes)
	if _, err := Write(1, cp); err == nil || !strings.Contains(err.Error(), "summary") {
		t.Fatalf("want a summary over the limit refused, got %v", err)
	}
	cp.Optimizer = strings.Repeat("x", MaxSummaryBytes-300)
	data, err := Write(1, cp)
	if err != nil {
		t.Fatalf("a summary under the limit: %v", err)
	}
	if _, err := Read(data); err != nil {
		t.Fatalf("read back: %v", err)
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	file, err := Read(validFile(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, generation := range []uint64{0, 1, 1 << 63, ^uint64(0)} {
		data, err := Write(generation, file.Checkpoint)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Read(data)
		if err != nil {
			t.Fatalf("generation %d: %v", generation, err)
		}
		if again.Generation != generation || !proto.Equal(again.Checkpoint, file.Checkpoint) || again.Summary.Trials != 4 {
			t.Fatalf("generation %d: read back %+v", generation, again)
		}
	}
}

func TestSummaryStringEscapes(t *testing.T) {
	var b bytes.Buffer
	writeString(&b, "a\"\\/\x00\x1f\b\t\n\f\r\x7f\u2028é😀")
	want := `"a\"\\/\u0000\u001f\b\t\n\f\r` + "\x7f\u2028é😀" + `"`
	if b.String() != want {
		t.Fatalf("got %s, want %s", b.String(), want)
	}
}

// FuzzRead: Read never panics, refuses with a *CorruptFile, a
// *checkpoint.ResumeMismatch or a *checkpoint.InvalidDelta only, and what it accepts is written back into a
// file that reads the same. The seeds are every store vector.
func FuzzRead(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add(readVector(f, v.File))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Read(data)
		if err != nil {
			var damaged *CorruptFile
			var refused *checkpoint.ResumeMismatch
			var delta *checkpoint.InvalidDelta
			if !errors.As(err, &damaged) && !errors.As(err, &refused) && !errors.As(err, &delta) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			return
		}
		again, err := Write(file.Generation, file.Checkpoint)
		if err != nil {
			t.Fatalf("Write of an accepted file: %v", err)
		}
		back, err := Read(again)
		if err != nil || back.Generation != file.Generation || !proto.Equal(back.Checkpoint, file.Checkpoint) {
			t.Fatalf("written back and read: %v", err)
		}
	})
}
