// Command testee is the Go conformance testee of the dsxir checkpoint format
// (see tests/conformance): it re-encodes checkpoints, hashes trainsets and
// reads store files, one-shot or in the `serve` loop of
// tests/conformance/proto/dsxir/conformance/v1/testee.proto.
//
//	testee reencode        checkpoint bytes on stdin → canonical bytes on stdout
//	testee hash-trainset   a Term list on stdin → hash_trainset hex digest
//	testee hash-trainset-json, hash-trainset-jsonl
//	                       JSON or JSON Lines text on stdin → hex digest (FORMAT.md §6.1)
//	testee read-store-file a store file on stdin, its commit records included
//	                       → canonical bytes of the checkpoint it ends with
//	testee reencode-delta  delta bytes on stdin → canonical delta bytes (FORMAT.md §13)
//	testee apply-delta BASE
//	                       delta bytes on stdin, base checkpoint bytes in the file BASE
//	                       → canonical bytes of the checkpoint the delta makes
//	testee serve           size-delimited Requests on stdin → Responses on stdout
//
// A refusal is one line "checkpoint_shape: <field path>: <message> (rule
// <id>)" on stderr and exit status 3 (a writer's refusal of a credential
// names no rule), or "delta_shape: <field path>: <message> (rule <id>)" for
// a delta that cannot be read or does not apply to its base, a store file's
// commit record included (a base, or a checkpoint a delta makes, that breaks
// a rule is checkpoint_shape); a
// damaged store file is one line "store_file: <kind>: <detail>" and exit
// status 4; usage errors exit with status 2. In `serve`
// a refusal is a Refusal message with the same exit code, its kind, path,
// rule and message; an unknown command is a Refusal of kind "command" with
// exit code 2.
package main

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/dsxir/dsxir-checkpoint/go/checkpoint"
	"github.com/dsxir/dsxir-checkpoint/go/storefile"
	conformancev1 "github.com/dsxir/dsxir-checkpoint/go/testee/conformancev1"
)

const (
	statusOK      = 0
	statusUsage   = 2
	statusRefused = 3
	statusDamaged = 4
	usage         = "usage: testee reencode | hash-trainset | hash-trainset-json | hash-trainset-jsonl | read-store-file | reencode-delta | apply-delta BASE_FILE | serve"
)

func main() {
	if len(os.Args) != 2 && !(len(os.Args) == 3 && os.Args[1] == "apply-delta") {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	switch os.Args[1] {
	case "apply-delta":
		if len(os.Args) != 3 {
			fmt.Fprintln(os.Stderr, usage)
			os.Exit(2)
		}
		base, err := os.ReadFile(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, "testee: reading the base:", err)
			os.Exit(1)
		}
		input, err := readInput(os.Stdin)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testee: reading stdin:", err)
			os.Exit(1)
		}
		out, refusal := applyDelta(base, input)
		if refusal != nil {
			fmt.Fprintln(os.Stderr, refusal.GetMessage())
			os.Exit(int(refusal.GetExitCode()))
		}
		if _, err := os.Stdout.Write(out); err != nil {
			fmt.Fprintln(os.Stderr, "testee: writing stdout:", err)
			os.Exit(1)
		}
	case "reencode", "hash-trainset", "hash-trainset-json", "hash-trainset-jsonl", "reencode-delta":
		input, err := readInput(os.Stdin)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testee: reading stdin:", err)
			os.Exit(1)
		}
		var out []byte
		var refusal string
		switch os.Args[1] {
		case "reencode":
			out, refusal = reencode(input)
		case "hash-trainset":
			out, refusal = hashTrainset(input)
		case "reencode-delta":
			var r *conformancev1.Refusal
			if out, r = reencodeDelta(input); r != nil {
				refusal = r.GetMessage()
			}
		case "hash-trainset-json":
			out, refusal = hashTrainsetText(input, checkpoint.HashTrainsetJSON)
		default:
			out, refusal = hashTrainsetText(input, checkpoint.HashTrainsetJSONL)
		}
		if refusal != "" {
			fmt.Fprintln(os.Stderr, refusal)
			os.Exit(statusRefused)
		}
		if _, err := os.Stdout.Write(out); err != nil {
			fmt.Fprintln(os.Stderr, "testee: writing stdout:", err)
			os.Exit(1)
		}
	case "read-store-file":
		input, err := io.ReadAll(os.Stdin)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testee: reading stdin:", err)
			os.Exit(1)
		}
		out, status, refusal := readStoreFile(input)
		if status != statusOK {
			fmt.Fprintln(os.Stderr, refusal)
			os.Exit(status)
		}
		if _, err := os.Stdout.Write(out); err != nil {
			fmt.Fprintln(os.Stderr, "testee: writing stdout:", err)
			os.Exit(1)
		}
	case "serve":
		if err := serve(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "testee serve:", err)
			os.Exit(1)
		}
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
}

// readInput reads stdin up to one byte past the size limit; a longer input is
// refused by Decode without the rest being read.
func readInput(r io.Reader) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r, checkpoint.MaxInputSize+1))
}

// refusalLine renders an error of the checkpoint package as the contract's
// refusal line (without newline).
func refusalLine(err error) string {
	var rm *checkpoint.ResumeMismatch
	if errors.As(err, &rm) && rm.Reason == checkpoint.ReasonCheckpointShape {
		return oneLine(rm.Error())
	}
	var ic *checkpoint.InvalidCheckpoint
	if errors.As(err, &ic) {
		return oneLine("checkpoint_shape: " + ic.Error())
	}
	return oneLine("checkpoint_shape: " + checkpoint.InputPath + ": " + err.Error())
}

func oneLine(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

func reencode(input []byte) ([]byte, string) {
	cp, err := checkpoint.Decode(input)
	if err != nil {
		return nil, refusalLine(err)
	}
	out, err := checkpoint.Encode(cp)
	if err != nil {
		return nil, refusalLine(err)
	}
	return out, ""
}

func hashTrainset(input []byte) ([]byte, string) {
	examples, err := checkpoint.DecodeTrainsetTerm(input)
	if err != nil {
		return nil, refusalLine(err)
	}
	digest, err := checkpoint.HashTrainset(examples)
	if err != nil {
		return nil, refusalLine(err)
	}
	return []byte(hex.EncodeToString(digest[:]) + "\n"), ""
}

// hashTrainsetText hashes a trainset kept as JSON text; a refusal is the line
// "trainset_json: <message>".
func hashTrainsetText(input []byte, hash func([]byte) ([32]byte, error)) ([]byte, string) {
	digest, err := hash(input)
	if err != nil {
		return nil, oneLine("trainset_json: " + err.Error())
	}
	return []byte(hex.EncodeToString(digest[:]) + "\n"), ""
}

// readStoreFile reads a whole store file: the canonical checkpoint bytes, or
// the exit status and line of its refusal.
func readStoreFile(input []byte) ([]byte, int, string) {
	out, refusal := storeFile(input)
	if refusal != nil {
		return nil, int(refusal.GetExitCode()), refusal.GetMessage()
	}
	return out, statusOK, ""
}

// storeFile reads a whole store file, its commit records included
// (docs/store-file.md §5, §9), and returns the canonical bytes of the
// checkpoint it ends with. A damaged file is of kind "store_file", a record's
// delta that cannot be read or applied "delta_shape", an invalid checkpoint
// (the snapshot's, or the one the records end with) "checkpoint_shape".
func storeFile(input []byte) ([]byte, *conformancev1.Refusal) {
	file, err := storefile.Read(input)
	if err != nil {
		var id *checkpoint.InvalidDelta
		if errors.As(err, &id) {
			return nil, deltaRefusalOf(err)
		}
		return nil, refusalOf(err)
	}
	out, err := checkpoint.Encode(file.Checkpoint)
	if err != nil {
		return nil, refusalOf(err)
	}
	return out, nil
}

// refusalOf is the Refusal message of an error of the checkpoint package
// (or of storefile.Read).
func refusalOf(err error) *conformancev1.Refusal {
	var damaged *storefile.CorruptFile
	if errors.As(err, &damaged) {
		return &conformancev1.Refusal{ExitCode: statusDamaged, Kind: "store_file", Path: string(damaged.Kind), Message: oneLine(damaged.Error())}
	}
	var rm *checkpoint.ResumeMismatch
	if errors.As(err, &rm) && rm.Reason == checkpoint.ReasonCheckpointShape {
		return &conformancev1.Refusal{ExitCode: statusRefused, Kind: "checkpoint_shape", Path: rm.Field, Rule: rm.Rule, Message: refusalLine(err)}
	}
	var ic *checkpoint.InvalidCheckpoint
	if errors.As(err, &ic) {
		return &conformancev1.Refusal{ExitCode: statusRefused, Kind: "checkpoint_shape", Path: ic.Path, Rule: ic.Rule, Message: refusalLine(err)}
	}
	return &conformancev1.Refusal{ExitCode: statusRefused, Kind: "checkpoint_shape", Path: checkpoint.InputPath, Message: refusalLine(err)}
}

// deltaRefusalOf is the Refusal of kind "delta_shape" of an error of a
// delta's reader or writer (a writer's refusal of a credential in the head
// names no rule).
func deltaRefusalOf(err error) *conformancev1.Refusal {
	var id *checkpoint.InvalidDelta
	if errors.As(err, &id) {
		return &conformancev1.Refusal{ExitCode: statusRefused, Kind: checkpoint.ReasonDeltaShape, Path: id.Path, Rule: id.Rule, Message: oneLine(id.Error())}
	}
	var ic *checkpoint.InvalidCheckpoint
	if errors.As(err, &ic) {
		return &conformancev1.Refusal{ExitCode: statusRefused, Kind: checkpoint.ReasonDeltaShape, Path: ic.Path, Rule: ic.Rule,
			Message: oneLine(checkpoint.ReasonDeltaShape + ": " + ic.Error())}
	}
	return &conformancev1.Refusal{ExitCode: statusRefused, Kind: checkpoint.ReasonDeltaShape, Path: checkpoint.InputPath,
		Message: oneLine(checkpoint.ReasonDeltaShape + ": " + checkpoint.InputPath + ": " + err.Error())}
}

// reencodeDelta reads a delta and writes its canonical bytes; every refusal
// is of kind "delta_shape".
func reencodeDelta(input []byte) ([]byte, *conformancev1.Refusal) {
	d, err := checkpoint.DecodeDelta(input)
	if err != nil {
		return nil, deltaRefusalOf(err)
	}
	out, err := checkpoint.EncodeDelta(d)
	if err != nil {
		return nil, deltaRefusalOf(err)
	}
	return out, nil
}

// applyDelta reads the base (a refusal of kind "checkpoint_shape") and the
// delta ("delta_shape"), applies the delta ("delta_shape" for delta.session
// and delta.base_trials, "checkpoint_shape" for the checkpoint it makes) and
// returns the canonical bytes of the new checkpoint.
func applyDelta(baseBytes, input []byte) ([]byte, *conformancev1.Refusal) {
	base, err := checkpoint.Decode(baseBytes)
	if err != nil {
		return nil, refusalOf(err)
	}
	d, err := checkpoint.DecodeDelta(input)
	if err != nil {
		return nil, deltaRefusalOf(err)
	}
	_, out, err := checkpoint.ApplyDelta(base, d)
	if err != nil {
		var id *checkpoint.InvalidDelta
		if errors.As(err, &id) {
			return nil, deltaRefusalOf(err)
		}
		return nil, refusalOf(err)
	}
	return out, nil
}

// digestLine is what the hash commands write: the lowercase hex digest and a
// newline (the Python testee's output, in serve as in the one-shot commands).
func digestLine(digest [32]byte) []byte { return []byte(hex.EncodeToString(digest[:]) + "\n") }

// answer runs one Request; its output is what the one-shot command writes.
func answer(req *conformancev1.Request) *conformancev1.Response {
	input := req.GetInput()
	var out []byte
	var err error
	switch req.GetCommand() {
	case conformancev1.Command_COMMAND_REENCODE:
		c, derr := checkpoint.Decode(input)
		if err = derr; err == nil {
			out, err = checkpoint.Encode(c)
		}
	case conformancev1.Command_COMMAND_HASH_TRAINSET:
		examples, derr := checkpoint.DecodeTrainsetTerm(input)
		if err = derr; err == nil {
			var digest [32]byte
			digest, err = checkpoint.HashTrainset(examples)
			out = digestLine(digest)
		}
	case conformancev1.Command_COMMAND_HASH_TRAINSET_JSON, conformancev1.Command_COMMAND_HASH_TRAINSET_JSONL:
		hash := checkpoint.HashTrainsetJSON
		if req.GetCommand() == conformancev1.Command_COMMAND_HASH_TRAINSET_JSONL {
			hash = checkpoint.HashTrainsetJSONL
		}
		digest, herr := hash(input)
		if herr != nil {
			refusal := &conformancev1.Refusal{ExitCode: statusRefused, Kind: "trainset_json", Message: oneLine("trainset_json: " + herr.Error())}
			var je *checkpoint.TrainsetJSONError
			if errors.As(herr, &je) {
				refusal.Path = strings.TrimSuffix(je.Error(), ": "+je.Detail)
			}
			return &conformancev1.Response{Result: &conformancev1.Response_Refusal{Refusal: refusal}}
		}
		out = digestLine(digest)
	case conformancev1.Command_COMMAND_REENCODE_DELTA, conformancev1.Command_COMMAND_APPLY_DELTA:
		var refusal *conformancev1.Refusal
		if req.GetCommand() == conformancev1.Command_COMMAND_REENCODE_DELTA {
			out, refusal = reencodeDelta(input)
		} else {
			out, refusal = applyDelta(req.GetBase(), input)
		}
		if refusal != nil {
			return &conformancev1.Response{Result: &conformancev1.Response_Refusal{Refusal: refusal}}
		}
	case conformancev1.Command_COMMAND_READ_STORE_FILE:
		var refusal *conformancev1.Refusal
		if out, refusal = storeFile(input); refusal != nil {
			return &conformancev1.Response{Result: &conformancev1.Response_Refusal{Refusal: refusal}}
		}
	default:
		return &conformancev1.Response{Result: &conformancev1.Response_Refusal{Refusal: &conformancev1.Refusal{
			ExitCode: statusUsage, Kind: "command", Message: fmt.Sprintf("unknown command %d", int32(req.GetCommand())),
		}}}
	}
	if err != nil {
		return &conformancev1.Response{Result: &conformancev1.Response_Refusal{Refusal: refusalOf(err)}}
	}
	if out == nil {
		out = []byte{}
	}
	return &conformancev1.Response{Result: &conformancev1.Response_Output{Output: out}}
}

// serve answers size-delimited Requests with size-delimited Responses
// (testee.proto) until the end of its input.
func serve(in io.Reader, out io.Writer) error {
	r := bufio.NewReaderSize(in, 1<<16)
	w := bufio.NewWriterSize(out, 1<<16)
	// A request may carry an input over the size limit, which the
	// commands themselves refuse.
	read := protodelim.UnmarshalOptions{MaxSize: -1}
	for {
		req := &conformancev1.Request{}
		if err := read.UnmarshalFrom(r, req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("reading a request: %w", err)
		}
		if _, err := protodelim.MarshalTo(w, answer(req)); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
}
