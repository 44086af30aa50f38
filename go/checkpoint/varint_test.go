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

// In a checkpoint an overlong varint breaks the grammar: wire.varint at the
// field for a value, at the message for an unknown field.
func TestOverlongVarintsRefusedInCheckpoint(t *testing.T) {
	cp := validCheckpoint(t)
	cp.TerminalReason = nil
	body := marshal(t, cp)
	term := append(protowire.AppendTag(nil, 3, protowire.VarintType), overlong...)
	_, err := Decode(seal(protowire.AppendBytes(protowire.AppendTag(bytes.Clone(body), 14, protowire.BytesType), term)))
	if ruleOf(t, err) != RuleWireVarint || shapeField(t, err) != "terminal_reason.int_value" {
		t.Fatalf("overlong int_value: %v", err)
	}
	_, err = Decode(seal(append(protowire.AppendTag(bytes.Clone(body), 99, protowire.VarintType), overlong...)))
	if ruleOf(t, err) != RuleWireVarint || shapeField(t, err) != InputPath {
		t.Fatalf("overlong unknown field: %v", err)
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
