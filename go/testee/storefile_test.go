package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	conformancev1 "github.com/dsxir/dsxir-checkpoint/go/testee/conformancev1"
)

// storeVector is one line of tests/vectors/store/manifest.jsonl.
type storeVector struct {
	Name, File, Verdict, Checkpoint, Kind, Field, Rule string
}

// Every store vector through serve (COMMAND_READ_STORE_FILE) and through the
// one-shot command's function: the checkpoint's canonical bytes, or the
// refusal the manifest names (a record's delta refused as delta_shape, the
// checkpoint the records end with as checkpoint_shape).
func TestStoreVectors(t *testing.T) {
	f, err := os.Open(filepath.Join(vectorsDir, "store", "manifest.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vectors []storeVector
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		var v storeVector
		if err := json.Unmarshal(lines.Bytes(), &v); err != nil {
			t.Fatal(err)
		}
		vectors = append(vectors, v)
	}
	if err := lines.Err(); err != nil {
		t.Fatal(err)
	}
	read := func(rel string) []byte {
		b, err := os.ReadFile(filepath.Join(vectorsDir, rel))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var reqs []*conformancev1.Request
	for _, v := range vectors {
		reqs = append(reqs, request(conformancev1.Command_COMMAND_READ_STORE_FILE, read(v.File)))
	}
	verdicts := map[string]int{}
	for i, got := range roundTrip(t, reqs) {
		v := vectors[i]
		verdicts[v.Verdict]++
		out, status, line := readStoreFile(reqs[i].GetInput())
		if v.Verdict == "ok" {
			want := read(v.Checkpoint)
			if got.GetRefusal() != nil || !bytes.Equal(got.GetOutput(), want) {
				t.Errorf("%s: %v, want the checkpoint's %d bytes", v.Name, got, len(want))
			}
			if status != statusOK || !bytes.Equal(out, want) {
				t.Errorf("%s: one-shot status %d: %s", v.Name, status, line)
			}
			continue
		}
		var want *conformancev1.Refusal
		switch v.Verdict {
		case "damaged":
			want = &conformancev1.Refusal{ExitCode: statusDamaged, Kind: "store_file", Path: v.Kind}
		case "checkpoint_refused":
			want = &conformancev1.Refusal{ExitCode: statusRefused, Kind: "checkpoint_shape", Path: v.Field, Rule: v.Rule}
		case "delta_refused":
			want = &conformancev1.Refusal{ExitCode: statusRefused, Kind: "delta_shape", Path: v.Field, Rule: v.Rule}
		default:
			t.Fatalf("%s: unknown verdict %q", v.Name, v.Verdict)
		}
		r := got.GetRefusal()
		if r == nil || r.GetExitCode() != want.GetExitCode() || r.GetKind() != want.GetKind() || r.GetPath() != want.GetPath() || r.GetRule() != want.GetRule() {
			t.Errorf("%s: %v, want refusal %v", v.Name, got, want)
			continue
		}
		prefix := want.GetKind() + ": " + want.GetPath() + ": "
		if !strings.HasPrefix(r.GetMessage(), prefix) || (want.GetRule() != "" && !strings.HasSuffix(r.GetMessage(), " (rule "+want.GetRule()+")")) {
			t.Errorf("%s: message %q", v.Name, r.GetMessage())
		}
		if status != int(want.GetExitCode()) || line != r.GetMessage() || out != nil {
			t.Errorf("%s: one-shot status %d line %q, serve %q", v.Name, status, line, r.GetMessage())
		}
	}
	if verdicts["delta_refused"] < 2 || verdicts["ok"] < 5 || verdicts["damaged"] < 10 || verdicts["checkpoint_refused"] < 3 {
		t.Fatalf("verdicts %v", verdicts)
	}
}
