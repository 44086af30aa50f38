package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
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

type response struct {
	status  byte
	payload []byte
}

// roundTrip runs serve over the given requests and parses its responses.
func roundTrip(t *testing.T, reqs [][2][]byte) []response {
	t.Helper()
	var in bytes.Buffer
	for _, r := range reqs {
		in.Write(r[0])
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(r[1])))
		in.Write(n[:])
		in.Write(r[1])
	}
	var out bytes.Buffer
	if err := serve(&in, &out); err != nil {
		t.Fatal(err)
	}
	var res []response
	for out.Len() > 0 {
		var h [5]byte
		if _, err := io.ReadFull(&out, h[:]); err != nil {
			t.Fatal(err)
		}
		p := make([]byte, binary.BigEndian.Uint32(h[1:]))
		if _, err := io.ReadFull(&out, p); err != nil {
			t.Fatal(err)
		}
		res = append(res, response{h[0], p})
	}
	if len(res) != len(reqs) {
		t.Fatalf("%d responses to %d requests", len(res), len(reqs))
	}
	return res
}

func TestServeVectors(t *testing.T) {
	m, read := load(t)
	var reqs [][2][]byte
	var wants []response
	rules := map[int]string{} // request index → the rule its refusal names
	for _, v := range m.Valid {
		b := read(v.Binpb)
		reqs = append(reqs, [2][]byte{{'r'}, b})
		wants = append(wants, response{0, b})
	}
	for _, v := range m.Invalid {
		if v.Rule == "" {
			t.Fatalf("the manifest names no rule for %s", v.Name)
		}
		rules[len(reqs)] = v.Rule
		reqs = append(reqs, [2][]byte{{'r'}, read(v.Binpb)})
		wants = append(wants, response{3, []byte("checkpoint_shape: " + v.Field + ": ")})
	}
	for _, v := range m.Trainset {
		reqs = append(reqs, [2][]byte{{'h'}, read(v.Input)})
		wants = append(wants, response{0, []byte(v.Sha256 + "\n")})
	}
	// A trainset refusal, and an empty request.
	rules[len(reqs)], rules[len(reqs)+1] = "input.malformed", "format.required"
	reqs = append(reqs, [2][]byte{{'h'}, {0x18, 0x02}}, [2][]byte{{'r'}, nil})
	wants = append(wants, response{3, []byte("checkpoint_shape: <input>: ")}, response{3, []byte("checkpoint_shape: format: ")})

	for i, got := range roundTrip(t, reqs) {
		want := wants[i]
		if got.status != want.status {
			t.Errorf("request %d: status %d, want %d (%s)", i, got.status, want.status, got.payload)
			continue
		}
		if want.status == 0 && !bytes.Equal(got.payload, want.payload) {
			t.Errorf("request %d: payload %x, want %x", i, got.payload, want.payload)
		}
		if want.status == 3 {
			line := string(got.payload)
			if !strings.HasPrefix(line, string(want.payload)) || strings.Contains(line, "\n") || len(line) == len(want.payload) {
				t.Errorf("request %d: refusal %q, want one line starting %q", i, line, want.payload)
			}
			if suffix := " (rule " + rules[i] + ")"; !strings.HasSuffix(line, suffix) {
				t.Errorf("request %d: refusal %q, want it to end with %q", i, line, suffix)
			}
		}
	}
}

func TestServeOversizedPayload(t *testing.T) {
	// The declared length is over the limit: the payload is skipped, not held.
	header := []byte{'r', 0, 0, 0, 0}
	binary.BigEndian.PutUint32(header[1:], 268435457)
	in := io.MultiReader(bytes.NewReader(header), io.LimitReader(zeros{}, 268435457))
	var out bytes.Buffer
	if err := serve(in, &out); err != nil {
		t.Fatal(err)
	}
	line := string(out.Bytes()[5:])
	if out.Bytes()[0] != 3 || !strings.HasPrefix(line, "checkpoint_shape: <input>: ") || !strings.HasSuffix(line, " (rule input.too_large)") {
		t.Fatalf("%q", out.Bytes())
	}
}

func TestServeErrors(t *testing.T) {
	if err := serve(bytes.NewReader([]byte{'x', 0, 0, 0, 0}), io.Discard); err == nil {
		t.Fatal("unknown command accepted")
	}
	if err := serve(bytes.NewReader([]byte{'r', 0, 0}), io.Discard); err == nil {
		t.Fatal("truncated header accepted")
	}
	if err := serve(bytes.NewReader([]byte{'r', 0, 0, 0, 5, 1}), io.Discard); err == nil {
		t.Fatal("truncated payload accepted")
	}
	if err := serve(bytes.NewReader(nil), io.Discard); err != nil {
		t.Fatalf("EOF: %v", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
