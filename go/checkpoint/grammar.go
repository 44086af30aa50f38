package checkpoint

import (
	"encoding/binary"
	"hash/crc32"
	"strconv"
	"unicode/utf8"

	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The byte grammar of a checkpoint (FORMAT.md §2): the checksum trailer, the
// strict scan of the body and the weight limit. The field table is built
// once from the generated descriptors, so a field added to the schema is
// scanned without an edit here; only the weights and the Term depth rules
// are written by hand.

const (
	// TrailerSize is the length of the checksum trailer: the tag FD FF FF FF 0F
	// and the CRC-32C of the body, least significant byte first (FORMAT.md §2.1).
	TrailerSize = 9
	// trailerNumber is the field number of the trailer; no body holds it.
	trailerNumber = 536870911
	// weightFactor and weightBase make the weight limit, weightFactor x the
	// input's length + weightBase (FORMAT.md §2.4).
	weightFactor = 7
	weightBase   = 50331648
)

// trailerTag is the trailer's first 5 bytes: field 536,870,911, wire type I32.
var trailerTag = [5]byte{0xfd, 0xff, 0xff, 0xff, 0x0f}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c is the CRC-32C (Castagnoli) of data.
func crc32c(data []byte) uint32 { return crc32.Checksum(data, castagnoli) }

// appendTrailer appends the trailer of body (which must be all of b) to b.
func appendTrailer(b []byte) []byte {
	sum := crc32c(b)
	b = append(b, trailerTag[:]...)
	return binary.LittleEndian.AppendUint32(b, sum)
}

// WeightLimit is the largest weight a checkpoint of size input bytes
// (trailer included) may have (FORMAT.md §2.4).
func WeightLimit(size int) int64 { return weightFactor*int64(size) + weightBase }

// The weights of the message values the grammar reads (FORMAT.md §2.4).
const (
	weightTrialLogEntry = 104
	weightTermNull      = 8
	weightMessage       = 48
)

// The value kinds of known fields.
type valueKind uint8

const (
	kindBool valueKind = iota
	kindUint32
	kindInt32 // int32, sint32 and enums: the int32 range, negatives sign-extended
	kindVarint64
	kindFixed64
	kindFixed32
	kindString
	kindBytes
	kindMessage
)

// The place of a message in the Term depth count (FORMAT.md §3.6).
type termRole uint8

const (
	roleOther     termRole = iota
	roleTerm               // Term
	roleContainer          // TermList, TermMap, TermMapEntry: their Terms share their depth
)

type fieldInfo struct {
	name     string
	kind     valueKind
	wire     protowire.Type
	presence bool
	repeated bool
	oneof    int // index of its (real) oneof, or -1
	message  *messageInfo
}

type messageInfo struct {
	fields []*fieldInfo // by field number
	weight int64
	role   termRole
}

func (m *messageInfo) field(num uint64) *fieldInfo {
	if num < uint64(len(m.fields)) {
		return m.fields[num]
	}
	return nil
}

// checkpointSchema is the field table of Checkpoint and every message below it.
var checkpointSchema = buildSchema((&v1.Checkpoint{}).ProtoReflect().Descriptor(), map[protoreflect.FullName]*messageInfo{})

var (
	termName      = (&v1.Term{}).ProtoReflect().Descriptor().FullName()
	termNullName  = (&v1.TermNull{}).ProtoReflect().Descriptor().FullName()
	trialName     = (&v1.TrialLogEntry{}).ProtoReflect().Descriptor().FullName()
	containerName = map[protoreflect.FullName]bool{
		(&v1.TermList{}).ProtoReflect().Descriptor().FullName():     true,
		(&v1.TermMap{}).ProtoReflect().Descriptor().FullName():      true,
		(&v1.TermMapEntry{}).ProtoReflect().Descriptor().FullName(): true,
	}
)

func buildSchema(md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]*messageInfo) *messageInfo {
	if m, ok := seen[md.FullName()]; ok {
		return m
	}
	m := &messageInfo{weight: weightMessage}
	switch name := md.FullName(); {
	case name == trialName:
		m.weight = weightTrialLogEntry
	case name == termNullName:
		m.weight = weightTermNull
	case name == termName:
		m.role = roleTerm
	case containerName[name]:
		m.role = roleContainer
	}
	seen[md.FullName()] = m
	fields := md.Fields()
	maxNum := 0
	for i := 0; i < fields.Len(); i++ {
		maxNum = max(maxNum, int(fields.Get(i).Number()))
	}
	m.fields = make([]*fieldInfo, maxNum+1)
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		f := &fieldInfo{
			name:     string(fd.Name()),
			presence: fd.HasPresence(),
			repeated: fd.Cardinality() == protoreflect.Repeated,
			oneof:    -1,
		}
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			f.oneof = od.Index()
		}
		switch fd.Kind() {
		case protoreflect.BoolKind:
			f.kind, f.wire = kindBool, protowire.VarintType
		case protoreflect.Uint32Kind:
			f.kind, f.wire = kindUint32, protowire.VarintType
		case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.EnumKind:
			f.kind, f.wire = kindInt32, protowire.VarintType
		case protoreflect.Int64Kind, protoreflect.Uint64Kind, protoreflect.Sint64Kind:
			f.kind, f.wire = kindVarint64, protowire.VarintType
		case protoreflect.DoubleKind, protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind:
			f.kind, f.wire = kindFixed64, protowire.Fixed64Type
		case protoreflect.FloatKind, protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind:
			f.kind, f.wire = kindFixed32, protowire.Fixed32Type
		case protoreflect.StringKind:
			f.kind, f.wire = kindString, protowire.BytesType
		case protoreflect.BytesKind:
			f.kind, f.wire = kindBytes, protowire.BytesType
		case protoreflect.MessageKind:
			f.kind, f.wire = kindMessage, protowire.BytesType
			f.message = buildSchema(fd.Message(), seen)
		default:
			panic("checkpoint: the schema has a field the grammar does not know: " + string(fd.FullName()))
		}
		if fd.IsMap() || fd.IsPacked() {
			panic("checkpoint: the schema has a map or packed field: " + string(fd.FullName()))
		}
		m.fields[fd.Number()] = f
	}
	return m
}

// frame is one message being scanned.
type frame struct {
	msg      *messageInfo
	end      int
	depth    int        // the Term depth of this message (Terms and their containers)
	field    *fieldInfo // the field of the parent that holds it (nil at the top)
	index    int        // its index when that field is repeated
	prevNum  uint64
	prevWire protowire.Type
	run      int    // elements of prevNum before the current one
	oneofs   uint64 // the oneofs one of whose fields was read
}

// scanner checks a body by the grammar of FORMAT.md §2.2. Paths are built
// only for a refusal.
type scanner struct {
	stack []frame
}

// messagePath is the path of the message of stack[:n] ("" at the top).
func (s *scanner) messagePath(n int) string {
	path := ""
	for i := 1; i < n; i++ {
		f := &s.stack[i]
		name := f.field.name
		if f.field.repeated {
			name = index(name, f.index)
		}
		path = join(path, name)
	}
	return path
}

// atMessage is the refusal of rule at the message being scanned.
func (s *scanner) atMessage(rule, detail string) *InvalidCheckpoint {
	p := s.messagePath(len(s.stack))
	if p == "" {
		p = InputPath
	}
	return invalid(rule, p, detail)
}

// atField is the refusal of rule at field f (element run) of the message being scanned.
func (s *scanner) atField(rule string, f *fieldInfo, run int, detail string) *InvalidCheckpoint {
	name := f.name
	if f.repeated {
		name = index(name, run)
	}
	return invalid(rule, join(s.messagePath(len(s.stack)), name), detail)
}

// Results of readVarint.
const (
	varintOK = iota
	varintTruncated
	varintBad
)

// readVarint reads the varint at pos, which must end before end: its value,
// its length and whether it is complete and minimal. Truncation comes before
// minimality.
func readVarint(b []byte, pos, end int) (uint64, int, int) {
	var v uint64
	for i := 0; i < 10; i++ {
		if pos+i >= end {
			return 0, 0, varintTruncated
		}
		c := b[pos+i]
		if i == 9 && c > 1 {
			return 0, 0, varintBad
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			if i > 0 && c == 0 {
				return 0, 0, varintBad
			}
			return v, i + 1, varintOK
		}
	}
	return 0, 0, varintBad // unreachable: the tenth byte is at most 1
}

// checkGrammar applies §7 step 1 to a whole input: the size limit, the
// trailer, the checksum, the grammar of the body and the weight limit. It
// returns the body.
func checkGrammar(data []byte) ([]byte, *InvalidCheckpoint) {
	return checkGrammarOf(checkpointSchema, data)
}

// checkGrammarOf is checkGrammar with root as the top-level message (a
// Checkpoint, or a CheckpointDelta: FORMAT.md §13).
func checkGrammarOf(root *messageInfo, data []byte) ([]byte, *InvalidCheckpoint) {
	n := len(data)
	if n > MaxInputSize {
		return nil, invalid(RuleInputTooLarge, InputPath, "input is "+strconv.Itoa(n)+" bytes, more than the limit of "+strconv.Itoa(MaxInputSize))
	}
	if n < TrailerSize || [5]byte(data[n-TrailerSize:n-4]) != trailerTag {
		return nil, invalid(RuleInputTrailer, InputPath, "no checksum trailer at the end (cut short, or not a checkpoint)")
	}
	body := data[:n-TrailerSize]
	if crc32c(body) != binary.LittleEndian.Uint32(data[n-4:]) {
		return nil, invalid(RuleInputChecksum, InputPath, "the checksum does not match the bytes")
	}
	if err := checkBodyOf(root, body, n); err != nil {
		return nil, err
	}
	return body, nil
}

// checkBody scans body by the grammar and checks the weight of a checkpoint
// of size input bytes.
func checkBody(body []byte, size int) *InvalidCheckpoint {
	return checkBodyOf(checkpointSchema, body, size)
}

// checkBodyOf is checkBody with root as the top-level message.
func checkBodyOf(root *messageInfo, body []byte, size int) *InvalidCheckpoint {
	weight, err := scanRoot(root, body)
	if err != nil {
		return err
	}
	if limit := WeightLimit(size); weight > limit {
		return invalid(RuleInputWeight, InputPath, "weight "+strconv.FormatInt(weight, 10)+" is over the limit of "+
			strconv.FormatInt(limit, 10)+" for "+strconv.Itoa(size)+" bytes")
	}
	return nil
}

// scanBody checks body (a Checkpoint without trailer) by the grammar of
// FORMAT.md §2.2 and returns its weight, or the first broken rule at the
// place §2.3 names. It is iterative; its stack is bounded by the Term depth
// because unknown fields are never descended into.
func scanBody(body []byte) (int64, *InvalidCheckpoint) {
	return scanRoot(checkpointSchema, body)
}

// scanRoot is scanBody with root as the top-level message: the scan is
// driven by the field table, so paths below a CheckpointDelta's head read
// "head." and the checkpoint's path.
func scanRoot(root *messageInfo, body []byte) (int64, *InvalidCheckpoint) {
	s := scanner{stack: make([]frame, 1, 16)}
	s.stack[0] = frame{msg: root, end: len(body)}
	var weight int64
	pos := 0
	for {
		top := len(s.stack) - 1
		f := &s.stack[top]
		if pos >= f.end {
			if top == 0 {
				return weight, nil
			}
			s.stack = s.stack[:top]
			continue
		}
		// The tag.
		tag, n, st := readVarint(body, pos, f.end)
		switch {
		case st == varintTruncated:
			return 0, s.atMessage(RuleWireTruncated, "a tag is cut short")
		case st == varintBad:
			return 0, s.atMessage(RuleWireVarint, "a tag is not a minimal varint")
		case tag >= 1<<32:
			return 0, s.atMessage(RuleWireVarint, "a tag is 2^32 or more")
		}
		pos += n
		num, wt := tag>>3, protowire.Type(tag&7)
		if num == 0 || num == trailerNumber {
			return 0, s.atMessage(RuleWireTag, "field number "+strconv.FormatUint(num, 10))
		}
		if wt != protowire.VarintType && wt != protowire.Fixed64Type && wt != protowire.BytesType && wt != protowire.Fixed32Type {
			return 0, s.atMessage(RuleWireTag, "wire type "+strconv.Itoa(int(wt))+" of field "+strconv.FormatUint(num, 10))
		}
		fi := f.msg.field(num)
		if num < f.prevNum || (num == f.prevNum && !((fi != nil && fi.repeated) || (fi == nil && wt == f.prevWire))) {
			return 0, s.atMessage(RuleWireOrder, "field "+strconv.FormatUint(num, 10)+" after field "+strconv.FormatUint(f.prevNum, 10))
		}
		if num == f.prevNum {
			f.run++
		} else {
			f.run = 0
		}
		f.prevNum, f.prevWire = num, wt
		if fi == nil {
			// An unknown field: its value is skipped, never looked into; it
			// is no kind of a Term (a Term of unknown fields only has none).
			switch wt {
			case protowire.VarintType:
				_, n, st := readVarint(body, pos, f.end)
				if st == varintTruncated {
					return 0, s.atMessage(RuleWireTruncated, "an unknown field is cut short")
				} else if st == varintBad {
					return 0, s.atMessage(RuleWireVarint, "an unknown field's varint is not minimal")
				}
				pos += n
			case protowire.BytesType:
				length, n, st := readVarint(body, pos, f.end)
				if st == varintTruncated {
					return 0, s.atMessage(RuleWireTruncated, "an unknown field is cut short")
				} else if st == varintBad {
					return 0, s.atMessage(RuleWireVarint, "an unknown field's length is not a minimal varint")
				}
				pos += n
				if length > uint64(f.end-pos) {
					return 0, s.atMessage(RuleWireTruncated, "an unknown field is longer than its message")
				}
				pos += int(length)
			default:
				size := 4
				if wt == protowire.Fixed64Type {
					size = 8
				}
				if f.end-pos < size {
					return 0, s.atMessage(RuleWireTruncated, "an unknown field is cut short")
				}
				pos += size
			}
			continue
		}
		if wt != fi.wire {
			return 0, s.atMessage(RuleWireTag, "field "+strconv.FormatUint(num, 10)+" with wire type "+strconv.Itoa(int(wt)))
		}
		if fi.oneof >= 0 {
			bit := uint64(1) << (fi.oneof & 63)
			if f.oneofs&bit != 0 {
				return 0, s.atMessage(RuleWireOneof, "more than one field of a oneof (a Term with more than one kind)")
			}
			f.oneofs |= bit
		}
		noDefault := !fi.presence && !fi.repeated
		switch wt {
		case protowire.VarintType:
			v, n, st := readVarint(body, pos, f.end)
			if st == varintTruncated {
				return 0, s.atMessage(RuleWireTruncated, fi.name+" is cut short")
			} else if st == varintBad {
				return 0, s.atField(RuleWireVarint, fi, f.run, "not a minimal varint of at most 64 bits")
			}
			pos += n
			switch fi.kind {
			case kindBool:
				if v > 1 {
					return 0, s.atField(RuleWireRange, fi, f.run, "bool "+strconv.FormatUint(v, 10))
				}
			case kindUint32:
				if v >= 1<<32 {
					return 0, s.atField(RuleWireRange, fi, f.run, strconv.FormatUint(v, 10)+" is over the uint32 range")
				}
			case kindInt32:
				if v >= 1<<31 && v < 1<<64-1<<31 {
					return 0, s.atField(RuleWireRange, fi, f.run, strconv.FormatUint(v, 10)+" is outside the int32 range")
				}
			}
			if v == 0 && noDefault {
				return 0, s.atField(RuleWireDefault, fi, f.run, "the default value is written")
			}
		case protowire.Fixed64Type, protowire.Fixed32Type:
			size := 4
			if wt == protowire.Fixed64Type {
				size = 8
			}
			if f.end-pos < size {
				return 0, s.atMessage(RuleWireTruncated, fi.name+" is cut short")
			}
			if noDefault && allZero(body[pos:pos+size]) {
				return 0, s.atField(RuleWireDefault, fi, f.run, "the default value is written")
			}
			pos += size
		default: // LEN
			length, n, st := readVarint(body, pos, f.end)
			if st == varintTruncated {
				return 0, s.atMessage(RuleWireTruncated, fi.name+" is cut short")
			} else if st == varintBad {
				return 0, s.atField(RuleWireVarint, fi, f.run, "the length is not a minimal varint")
			}
			pos += n
			if length > uint64(f.end-pos) {
				return 0, s.atMessage(RuleWireTruncated, fi.name+" is longer than its message")
			}
			stop := pos + int(length)
			if fi.kind != kindMessage {
				if fi.kind == kindString && !utf8.Valid(body[pos:stop]) {
					return 0, s.atField(RuleWireUTF8, fi, f.run, "not well-formed UTF-8")
				}
				if length == 0 && noDefault {
					return 0, s.atField(RuleWireDefault, fi, f.run, "the default value is written")
				}
				pos = stop
				continue
			}
			child := fi.message
			depth := 0
			switch {
			case child.role == roleTerm:
				switch f.msg.role {
				case roleTerm:
					depth = f.depth + 1
				case roleContainer:
					depth = f.depth
				default:
					depth = 1
				}
				if depth > MaxTermDepth {
					return 0, s.atField(RuleTermDepth, fi, f.run, "Term nested deeper than "+strconv.Itoa(MaxTermDepth))
				}
			case child.role == roleContainer:
				switch f.msg.role {
				case roleTerm:
					depth = f.depth + 1
				case roleContainer:
					depth = f.depth
				default:
					depth = 2 // a TermMap field counts as a map Term of depth 1
				}
			case f.msg.role == roleTerm:
				depth = f.depth + 1
			}
			weight += child.weight
			s.stack = append(s.stack, frame{msg: child, end: stop, depth: depth, field: fi, index: f.run})
		}
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
