package checkpoint

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"

	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"
)

// trainsetDomain is the domain separator of hash_trainset (FORMAT.md §6).
const trainsetDomain = "dsxir.trainset.v1\n"

// HashTrainset fingerprints an ordered list of examples (FORMAT.md §6):
// SHA-256 over the domain separator, the number of examples, and each
// example's canonical Term bytes prefixed by their length (all lengths
// big-endian uint64). Each example is converted with ToTerm; a value it
// refuses is reported with a path such as `trainset[3]["meta"][0]`.
func HashTrainset(examples []any) ([32]byte, error) {
	h := sha256.New()
	h.Write([]byte(trainsetDomain))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(examples)))
	h.Write(n[:])
	for i, ex := range examples {
		t, err := toTerm(ex, index("trainset", i), 1)
		if err != nil {
			return [32]byte{}, err
		}
		b, merr := marshalOptions.Marshal(t)
		if merr != nil {
			return [32]byte{}, invalid("", index("trainset", i), "cannot encode: "+merr.Error())
		}
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out, nil
}

// DecodeTrainsetTerm reads the encoding of one Term whose kind is list_value
// (any valid protobuf encoding; map entries may come in any order) and
// returns its items as Go values (see FromTerm), ready for HashTrainset.
// Each item is one example, checked as a root Term. Errors are
// *InvalidCheckpoint with "<input>" for a size, parse or kind failure and
// otherwise a path relative to the list, e.g.
// `items[2].map_value.entries[1].key`.
func DecodeTrainsetTerm(data []byte) ([]any, error) {
	if len(data) > MaxInputSize {
		return nil, invalid(RuleInputTooLarge, InputPath, "input is "+strconv.Itoa(len(data))+" bytes, more than the limit of "+strconv.Itoa(MaxInputSize))
	}
	t := &v1.Term{}
	data = maskOverlongVarints(data, t.ProtoReflect().Descriptor())
	if err := unmarshalOptions.Unmarshal(data, t); err != nil {
		return nil, invalid(RuleInputMalformed, InputPath, "not a protobuf Term: "+parseError(err))
	}
	list, ok := t.GetKind().(*v1.Term_ListValue)
	if !ok {
		return nil, invalid(RuleInputMalformed, InputPath, "the trainset must be a Term whose kind is list_value")
	}
	items := list.ListValue.GetItems()
	out := make([]any, len(items))
	for i, it := range items {
		c, err := canonicalTerm(it, index("items", i), 1)
		if err != nil {
			return nil, err
		}
		out[i] = fromCanonical(c)
	}
	return out, nil
}
