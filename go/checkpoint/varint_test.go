package checkpoint

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"
)

// overlong is the varint 1 written in 10 bytes with excess bits in the
// tenth: 81 80 80 80 80 80 80 80 80 7e (the low 64 bits read as 1).
var overlong = []byte{0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7e}

func TestOverlongVarintsReadAsLow64Bits(t *testing.T) {
	cp := validCheckpoint(t)
	canonical, err := Encode(cp)
	if err != nil {
		t.Fatal(err)
	}

	// status (13) = 1 again, written overlong: read as 1, last one wins.
	in := append(protowire.AppendTag(bytes.Clone(canonical), 13, protowire.VarintType), overlong...)
	got, err := Decode(in)
	if err != nil {
		t.Fatalf("overlong status refused: %v", err)
	}
	if out, _ := Encode(got); !bytes.Equal(out, canonical) {
		t.Fatalf("re-encoding differs from the canonical bytes")
	}

	// Inside a Term: terminal_reason = int_value with an overlong varint.
	term := append(protowire.AppendTag(nil, 3, protowire.VarintType), overlong...) // zig-zag 1 = -1
	cp.TerminalReason = nil
	in = protowire.AppendBytes(protowire.AppendTag(marshal(t, cp), 14, protowire.BytesType), term)
	got, err = Decode(in)
	if err != nil {
		t.Fatalf("overlong int_value refused: %v", err)
	}
	if got.GetTerminalReason().GetIntValue() != -1 {
		t.Fatalf("read %v, want -1", got.GetTerminalReason())
	}

	// An unknown varint field (99) of a known message: accepted, kept masked.
	in = append(protowire.AppendTag(bytes.Clone(canonical), 99, protowire.VarintType), overlong...)
	got, err = Decode(in)
	if err != nil {
		t.Fatalf("overlong unknown field refused: %v", err)
	}
	want := append(protowire.AppendTag(bytes.Clone(canonical), 99, protowire.VarintType), overlong[:9]...)
	want = append(want, 0x00)
	if out, _ := Encode(got); !bytes.Equal(out, want) {
		t.Fatalf("unknown field re-encoded as %x, want %x", out, want)
	}

	// Eleven bytes are not a varint: refused.
	in = append(protowire.AppendTag(bytes.Clone(canonical), 13, protowire.VarintType), 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01)
	if _, err := Decode(in); err == nil || shapeField(t, err) != InputPath {
		t.Fatalf("11-byte varint: %v", err)
	}
}

// Bytes that look like an overlong varint inside a bytes field are data and
// stay as they are.
func TestOverlongLookalikeInBytesUntouched(t *testing.T) {
	cp := validCheckpoint(t)
	cp.SamplerBlob = append([]byte{0x08}, overlong...)
	cp.TerminalReason = &v1.Term{Kind: &v1.Term_BytesValue{BytesValue: append([]byte{0x18}, overlong...)}}
	canonical, err := Encode(cp)
	if err != nil {
		t.Fatal(err)
	}
	if !mayHoldOverlongVarint(canonical) {
		t.Fatal("the test input does not trigger the scan")
	}
	got, err := Decode(canonical)
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := Encode(got); !bytes.Equal(out, canonical) {
		t.Fatalf("bytes content was changed")
	}
	if !bytes.Equal(maskOverlongVarints(canonical, cp.ProtoReflect().Descriptor()), canonical) {
		t.Fatal("mask changed bytes that are not varints")
	}
}

func TestOverlongVarintInTrainsetTerm(t *testing.T) {
	item := append(protowire.AppendTag(nil, 3, protowire.VarintType), overlong...)
	list := protowire.AppendBytes(protowire.AppendTag(nil, 9, protowire.BytesType),
		protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), item))
	got, err := DecodeTrainsetTerm(list)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != int64(-1) {
		t.Fatalf("%#v", got)
	}
}
