// Command testee is the Go conformance testee of the dsxir checkpoint format
// (see tests/conformance): it re-encodes checkpoints, hashes trainsets and
// serves both in a length-prefixed loop.
//
//	testee reencode        checkpoint bytes on stdin → canonical bytes on stdout
//	testee hash-trainset   a Term list on stdin → hash_trainset hex digest
//	testee hash-trainset-json, hash-trainset-jsonl
//	                       JSON or JSON Lines text on stdin → hex digest (FORMAT.md §6.1)
//	testee read-store-file a store file on stdin → canonical checkpoint bytes
//	testee serve           request/response loop on stdin/stdout
//
// A refusal is one line "checkpoint_shape: <field path>: <message> (rule
// <id>)" on stderr and exit status 3 (a writer's refusal of a credential
// names no rule); a damaged store file is one line "store_file: <kind>:
// <detail>" and exit status 4; usage errors exit with status 2.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/dsxir/dsxir-checkpoint/go/checkpoint"
	"github.com/dsxir/dsxir-checkpoint/go/storefile"
)

const (
	statusOK      = 0
	statusRefused = 3
	statusDamaged = 4
	usage         = "usage: testee reencode | hash-trainset | hash-trainset-json | hash-trainset-jsonl | read-store-file | serve"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	switch os.Args[1] {
	case "reencode", "hash-trainset", "hash-trainset-json", "hash-trainset-jsonl":
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
	file, err := storefile.Read(input)
	if err != nil {
		var damaged *storefile.CorruptFile
		if errors.As(err, &damaged) {
			return nil, statusDamaged, oneLine(damaged.Error())
		}
		return nil, statusRefused, refusalLine(err)
	}
	out, err := checkpoint.Encode(file.Checkpoint)
	if err != nil {
		return nil, statusRefused, refusalLine(err)
	}
	return out, statusOK, ""
}

// serve answers requests (1 command byte, 4-byte big-endian length, payload)
// with responses (1 status byte, 4-byte big-endian length, payload) until EOF.
func serve(in io.Reader, out io.Writer) error {
	r := bufio.NewReaderSize(in, 1<<16)
	w := bufio.NewWriterSize(out, 1<<16)
	var header [5]byte
	for {
		if _, err := io.ReadFull(r, header[:1]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if _, err := io.ReadFull(r, header[1:]); err != nil {
			return fmt.Errorf("truncated request header: %w", err)
		}
		cmd := header[0]
		size := binary.BigEndian.Uint32(header[1:])
		var result []byte
		var refusal string
		status := byte(statusRefused)
		if cmd == 's' {
			payload := make([]byte, size)
			if _, err := io.ReadFull(r, payload); err != nil {
				return fmt.Errorf("truncated payload: %w", err)
			}
			var code int
			result, code, refusal = readStoreFile(payload)
			status = byte(code)
		} else if uint64(size) > checkpoint.MaxInputSize {
			// Too long to be accepted: skip the payload without holding it.
			if _, err := io.CopyN(io.Discard, r, int64(size)); err != nil {
				return fmt.Errorf("truncated payload: %w", err)
			}
			refusal = fmt.Sprintf("checkpoint_shape: %s: input is %d bytes, more than the limit of %d (rule %s)",
				checkpoint.InputPath, size, checkpoint.MaxInputSize, checkpoint.RuleInputTooLarge)
		} else {
			payload := make([]byte, size)
			if _, err := io.ReadFull(r, payload); err != nil {
				return fmt.Errorf("truncated payload: %w", err)
			}
			switch cmd {
			case 'r':
				result, refusal = reencode(payload)
			case 'h':
				result, refusal = hashTrainset(payload)
			case 'j':
				result, refusal = hashTrainsetText(payload, checkpoint.HashTrainsetJSON)
			case 'l':
				result, refusal = hashTrainsetText(payload, checkpoint.HashTrainsetJSONL)
			default:
				return fmt.Errorf("unknown command byte 0x%02x", cmd)
			}
		}
		if refusal == "" {
			status = statusOK
		} else {
			result = []byte(refusal)
		}
		header[0] = status
		binary.BigEndian.PutUint32(header[1:], uint32(len(result)))
		if _, err := w.Write(header[:]); err != nil {
			return err
		}
		if _, err := w.Write(result); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
}
