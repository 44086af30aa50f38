package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protodelim"

	conformancev1 "github.com/dsxir/dsxir-checkpoint/go/testee/conformancev1"
)

var vectorsDir = filepath.Join("..", "..", "tests", "vectors")

type manifest struct {
	Valid []struct {
		Binpb string `json:"binpb"`
	} `json:"valid"`
	Invalid []struct {
		Name, Binpb, Field, Rule string
	} `json:"invalid"`
	Trainset []struct {
		Input, Sha256 string
	} `json:"trainset"`
}

func load(t *testing.T) (*manifest, func(string) []byte) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(vectorsDir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	read := func(rel string) []byte {
		b, err := os.ReadFile(filepath.Join(vectorsDir, rel))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return &m, read
}

// roundTrip runs serve over the given requests and reads its responses.
func roundTrip(t *testing.T, reqs []*conformancev1.Request) []*conformancev1.Response {
	t.Helper()
	var in bytes.Buffer
	for _, r := range reqs {
		if _, err := protodelim.MarshalTo(&in, r); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := serve(&in, &out); err != nil {
		t.Fatal(err)
	}
	var res []*conformancev1.Response
	r := bufio.NewReader(&out)
	for {
		m := &conformancev1.Response{}
		if err := protodelim.UnmarshalFrom(r, m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatal(err)
		}
		res = append(res, m)
	}
	if len(res) != len(reqs) {
		t.Fatalf("%d responses to %d requests", len(res), len(reqs))
	}
	return res
}

func request(c conformancev1.Command, input []byte) *conformancev1.Request {
	return &conformancev1.Request{Command: c, Input: input}
}

func TestServeVectors(t *testing.T) {
	m, read := load(t)
	var reqs []*conformancev1.Request
	var wants []*conformancev1.Response
	output := func(b []byte) *conformancev1.Response {
		return &conformancev1.Response{Result: &conformancev1.Response_Output{Output: b}}
	}
	refusal := func(r *conformancev1.Refusal) *conformancev1.Response {
		return &conformancev1.Response{Result: &conformancev1.Response_Refusal{Refusal: r}}
	}
	for _, v := range m.Valid {
		b := read(v.Binpb)
		reqs = append(reqs, request(conformancev1.Command_COMMAND_REENCODE, b))
		wants = append(wants, output(b))
	}
	for _, v := range m.Invalid {
		if v.Rule == "" {
			t.Fatalf("the manifest names no rule for %s", v.Name)
		}
		reqs = append(reqs, request(conformancev1.Command_COMMAND_REENCODE, read(v.Binpb)))
		wants = append(wants, refusal(&conformancev1.Refusal{ExitCode: 3, Kind: "checkpoint_shape", Path: v.Field, Rule: v.Rule}))
	}
	for _, v := range m.Trainset {
		reqs = append(reqs, request(conformancev1.Command_COMMAND_HASH_TRAINSET, read(v.Input)))
		if _, err := hex.DecodeString(v.Sha256); err != nil || len(v.Sha256) != 64 {
			t.Fatalf("digest %q", v.Sha256)
		}
		wants = append(wants, output([]byte(v.Sha256+"\n")))
	}
	// A trainset refusal, an empty request, JSON text, a store file that is
	// no store file, and commands that are none.
	reqs = append(reqs,
		request(conformancev1.Command_COMMAND_HASH_TRAINSET, []byte{0x18, 0x02}),
		request(conformancev1.Command_COMMAND_REENCODE, nil),
		request(conformancev1.Command_COMMAND_HASH_TRAINSET_JSON, []byte("[1, 2")),
		request(conformancev1.Command_COMMAND_HASH_TRAINSET_JSONL, []byte("1\n\n[x]\n")),
		request(conformancev1.Command_COMMAND_READ_STORE_FILE, []byte("short")),
		request(conformancev1.Command_COMMAND_UNSPECIFIED, nil),
		request(conformancev1.Command(99), []byte{1}),
	)
	wants = append(wants,
		refusal(&conformancev1.Refusal{ExitCode: 3, Kind: "checkpoint_shape", Path: "<input>", Rule: "input.malformed"}),
		refusal(&conformancev1.Refusal{ExitCode: 3, Kind: "checkpoint_shape", Path: "<input>", Rule: "input.trailer"}),
		refusal(&conformancev1.Refusal{ExitCode: 3, Kind: "trainset_json", Path: "byte 5"}),
		refusal(&conformancev1.Refusal{ExitCode: 3, Kind: "trainset_json", Path: "line 3, byte 4"}),
		refusal(&conformancev1.Refusal{ExitCode: 4, Kind: "store_file", Path: "truncated"}),
		refusal(&conformancev1.Refusal{ExitCode: 2, Kind: "command"}),
		refusal(&conformancev1.Refusal{ExitCode: 2, Kind: "command"}),
	)

	for i, got := range roundTrip(t, reqs) {
		want := wants[i]
		if want.GetRefusal() == nil {
			if got.GetRefusal() != nil || !bytes.Equal(got.GetOutput(), want.GetOutput()) {
				t.Errorf("request %d: %v, want output %x", i, got, want.GetOutput())
			}
			continue
		}
		r, w := got.GetRefusal(), want.GetRefusal()
		if r == nil || r.GetExitCode() != w.GetExitCode() || r.GetKind() != w.GetKind() || r.GetPath() != w.GetPath() || r.GetRule() != w.GetRule() {
			t.Errorf("request %d: %v, want refusal %v", i, got, w)
			continue
		}
		if r.GetMessage() == "" || strings.Contains(r.GetMessage(), "\n") {
			t.Errorf("request %d: message %q", i, r.GetMessage())
		}
		if w.GetRule() != "" && !strings.HasSuffix(r.GetMessage(), " (rule "+w.GetRule()+")") {
			t.Errorf("request %d: message %q does not end with its rule", i, r.GetMessage())
		}
	}
}

func TestServeOversizedInput(t *testing.T) {
	// An input over the limit is refused by the command, not by the loop.
	var in bytes.Buffer
	if _, err := protodelim.MarshalTo(&in, request(conformancev1.Command_COMMAND_REENCODE, make([]byte, 268435457))); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := serve(&in, &out); err != nil {
		t.Fatal(err)
	}
	got := &conformancev1.Response{}
	if err := protodelim.UnmarshalFrom(bufio.NewReader(&out), got); err != nil {
		t.Fatal(err)
	}
	if r := got.GetRefusal(); r.GetPath() != "<input>" || r.GetRule() != "input.too_large" || r.GetExitCode() != 3 {
		t.Fatalf("%v", got)
	}
}

func TestServeErrors(t *testing.T) {
	if err := serve(bytes.NewReader([]byte{0x05, 0x08}), io.Discard); err == nil {
		t.Fatal("truncated request accepted")
	}
	if err := serve(bytes.NewReader([]byte{0x80}), io.Discard); err == nil {
		t.Fatal("truncated length accepted")
	}
	if err := serve(bytes.NewReader([]byte{0x02, 0x0f, 0x00}), io.Discard); err == nil {
		t.Fatal("a request that is no Request accepted")
	}
	if err := serve(bytes.NewReader(nil), io.Discard); err != nil {
		t.Fatalf("EOF: %v", err)
	}
}
