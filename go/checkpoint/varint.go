package checkpoint

import (
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Overlong varints in DecodeTrainsetTerm.
//
// A checkpoint's varints are checked by the grammar (grammar.go): an
// overlong varint is refused there (wire.varint). DecodeTrainsetTerm reads
// any protobuf encoding of a Term instead, as the runtimes read it. A varint
// has at most 10 bytes; the tenth carries bit 63 in its lowest bit. When
// that byte has higher bits set (the value does not fit in 64 bits), the
// C++, Java and Python (upb) runtimes drop the excess bits and read the low
// 64, while the Go runtime refuses the whole input. The Python library is
// the reference, so DecodeTrainsetTerm masks those excess bits before
// parsing, and a trainset gets the digest it gets in Python.

// maskOverlongVarints returns data unchanged when it holds no overlong
// varint, else a copy in which each overlong varint's tenth byte is reduced
// to its lowest bit. md describes the message encoded in data.
func maskOverlongVarints(data []byte, md protoreflect.MessageDescriptor) []byte {
	if !mayHoldOverlongVarint(data) {
		return data
	}
	var at []int
	scanMessage(data, 0, md, 0, &at)
	if len(at) == 0 {
		return data
	}
	out := make([]byte, len(data))
	copy(out, data)
	for _, i := range at {
		out[i] &= 0x01
	}
	return out
}

// mayHoldOverlongVarint is a quick filter: nine continuation bytes followed
// by a final byte above 1.
func mayHoldOverlongVarint(b []byte) bool {
	run := 0
	for _, c := range b {
		if c >= 0x80 {
			run++
			continue
		}
		if run >= 9 && c > 1 {
			return true
		}
		run = 0
	}
	return false
}

// varintEnd returns the length of the varint at the start of b and the index
// of its tenth byte when that byte is overlong (else -1); n < 0 when b holds
// no complete varint of at most 10 bytes.
func varintEnd(b []byte) (n int, overlong int) {
	for i := 0; i < len(b) && i < 10; i++ {
		if b[i] < 0x80 {
			if i == 9 && b[i] > 1 {
				return i + 1, i
			}
			return i + 1, -1
		}
	}
	return -1, -1
}

// scanMessage walks the fields of a message encoded in b (found at offset
// base of the whole input), records the offsets of overlong tenth bytes in
// *at and descends into fields that md declares as messages. It stops
// quietly at anything malformed: the parser then refuses it. A nil md is an
// unknown message (a group's contents).
func scanMessage(b []byte, base int, md protoreflect.MessageDescriptor, depth int, at *[]int) (endGroup protowire.Number, rest int) {
	if depth > recursionLimit {
		return 0, -1
	}
	i := 0
	for i < len(b) {
		num, typ, n := protowire.ConsumeTag(b[i:])
		if n < 0 {
			return 0, -1
		}
		i += n
		switch typ {
		case protowire.VarintType:
			m, over := varintEnd(b[i:])
			if m < 0 {
				return 0, -1
			}
			if over >= 0 {
				*at = append(*at, base+i+over)
			}
			i += m
		case protowire.Fixed32Type:
			i += 4
		case protowire.Fixed64Type:
			i += 8
		case protowire.BytesType:
			size, m := protowire.ConsumeVarint(b[i:])
			if m < 0 || size > uint64(len(b)-i-m) {
				return 0, -1
			}
			i += m
			if md != nil {
				if fd := md.Fields().ByNumber(num); fd != nil && fd.Message() != nil && fd.Kind() == protoreflect.MessageKind {
					scanMessage(b[i:i+int(size)], base+i, fd.Message(), depth+1, at)
				}
			}
			i += int(size)
		case protowire.StartGroupType:
			end, m := scanMessage(b[i:], base+i, nil, depth+1, at)
			if m < 0 || end != num {
				return 0, -1
			}
			i += m
		case protowire.EndGroupType:
			return num, i
		default:
			return 0, -1
		}
	}
	if i > len(b) {
		return 0, -1
	}
	return 0, i
}
