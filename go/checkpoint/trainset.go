package checkpoint

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"

	"google.golang.org/protobuf/proto"

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

// trainsetUnmarshalOptions read a trainset Term as a value: unknown fields
// are not kept.
var trainsetUnmarshalOptions = proto.UnmarshalOptions{RecursionLimit: recursionLimit, DiscardUnknown: true}

// DecodeTrainsetTerm reads the encoding of one Term whose kind is list_value
// (any valid protobuf encoding; map entries may come in any order) and
// returns its items as Go values (see FromTerm), ready for HashTrainset.
// Each item is one example, checked as a root Term. Unknown fields are
// dropped as the Term is read: an example is a value, and two map keys that
// differ only in unknown fields are the same key (a duplicate). Errors are
// *InvalidCheckpoint with "<input>" for a size, parse or kind failure and
// otherwise a path relative to the list, e.g.
// `items[2].map_value.entries[1].key`.
func DecodeTrainsetTerm(data []byte) ([]any, error) {
	if len(data) > MaxInputSize {
		return nil, invalid(RuleInputTooLarge, InputPath, "input is "+strconv.Itoa(len(data))+" bytes, more than the limit of "+strconv.Itoa(MaxInputSize))
	}
	t := &v1.Term{}
	data = maskOverlongVarints(data, t.ProtoReflect().Descriptor())
	if err := trainsetUnmarshalOptions.Unmarshal(data, t); err != nil {
		return nil, invalid(RuleInputMalformed, InputPath, "not a protobuf Term: "+parseError(err))
	}
	list, ok := t.GetKind().(*v1.Term_ListValue)
	if !ok {
		return nil, invalid(RuleInputMalformed, InputPath, "the trainset must be a Term whose kind is list_value")
	}
	items := list.ListValue.GetItems()
	out := make([]any, len(items))
	for i, it := range items {
		path := index("items", i)
		if err := checkTrainsetTerm(it, path, 1); err != nil {
			return nil, err
		}
		c, err := canonicalTerm(it, path, 1)
		if err != nil {
			return nil, err
		}
		out[i] = fromCanonical(c)
	}
	return out, nil
}

// checkTrainsetTerm applies the Term checks of FORMAT.md §7 in their order
// to a Term whose map entries may come in any order: per map entry, its key
// is present and valid, its value is present and valid, then its key's
// canonical bytes must not repeat an earlier entry's (term.map.order at
// `….entries[i].key`), before the next entry is looked at.
func checkTrainsetTerm(t *v1.Term, path string, level int) *InvalidCheckpoint {
	if err := checkTermNode(t, path, level); err != nil {
		return err
	}
	switch k := t.GetKind().(type) {
	case *v1.Term_ListValue:
		return checkTrainsetItems(k.ListValue.GetItems(), join(path, "list_value"), level)
	case *v1.Term_TupleValue:
		return checkTrainsetItems(k.TupleValue.GetItems(), join(path, "tuple_value"), level)
	case *v1.Term_MapValue:
		mapPath := join(path, "map_value")
		seen := make(map[string]bool, len(k.MapValue.GetEntries()))
		for i, e := range k.MapValue.GetEntries() {
			p := index(mapPath+".entries", i)
			if e.GetKey() == nil {
				return invalid(RuleTermMapKeyRequired, p, "map entry has no key")
			}
			if err := checkTrainsetTerm(e.GetKey(), p+".key", level+1); err != nil {
				return err
			}
			if e.GetValue() == nil {
				return invalid(RuleTermMapValueRequired, p, "map entry has no value")
			}
			if err := checkTrainsetTerm(e.GetValue(), p+".value", level+1); err != nil {
				return err
			}
			key, err := canonicalTerm(e.GetKey(), p+".key", level+1)
			if err != nil {
				return err
			}
			kb, merr := marshalOptions.Marshal(key)
			if merr != nil {
				return invalid("", p+".key", "cannot encode key: "+merr.Error())
			}
			if seen[string(kb)] {
				return invalid(RuleTermMapOrder, p+".key", "duplicate map key")
			}
			seen[string(kb)] = true
		}
	}
	return nil
}

func checkTrainsetItems(items []*v1.Term, path string, level int) *InvalidCheckpoint {
	for i, it := range items {
		if err := checkTrainsetTerm(it, index(path+".items", i), level+1); err != nil {
			return err
		}
	}
	return nil
}
