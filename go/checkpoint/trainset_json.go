package checkpoint

import (
	"bytes"
	"errors"
	"math"
	"math/big"
	"strconv"
	"unicode/utf8"
)

// MaxIntegerDigits is the most digits of an integer in trainset JSON
// (FORMAT.md §6.1): decimal-to-binary conversion grows faster than linearly.
const MaxIntegerDigits = 4300

// TrainsetJSONError reports JSON text that is not a trainset under FORMAT.md
// §6.1. Offset is the byte offset of the offending part from the start of the
// text, Line its 1-based line for JSON Lines (0 for JSON), Detail what is
// wrong. Error() reads "byte 12: detail" or "line 3, byte 12: detail".
type TrainsetJSONError struct {
	Offset int
	Line   int
	Detail string
}

func (e *TrainsetJSONError) Error() string {
	if e.Line > 0 {
		return "line " + strconv.Itoa(e.Line) + ", byte " + strconv.Itoa(e.Offset) + ": " + e.Detail
	}
	return "byte " + strconv.Itoa(e.Offset) + ": " + e.Detail
}

// HashTrainsetJSON returns the FORMAT.md §6 digest of a trainset written as
// one JSON array (FORMAT.md §6.1): its elements are the examples, in order.
// An integer (no fraction, no exponent) is an integer Term (a big one past
// int64, never a float); any other number is the nearest float64. Text over
// MaxInputSize bytes, text that is not UTF-8, a byte order mark, any syntax
// error (NaN, Infinity, leading zeros, trailing content), a lone surrogate
// escape, a duplicate key, a float too large for a float64, an integer of more
// than MaxIntegerDigits digits, nesting deeper than MaxTermDepth and a
// top-level value that is not an array are refused with a *TrainsetJSONError.
func HashTrainsetJSON(text []byte) ([32]byte, error) {
	if err := checkTrainsetText(text, false); err != nil {
		return [32]byte{}, err
	}
	p := &jsonParser{data: text, end: len(text)}
	i := p.skip(0)
	if i >= len(text) || text[i] != '[' {
		return [32]byte{}, &TrainsetJSONError{Offset: i, Detail: "the top-level value must be an array of examples"}
	}
	examples, i, err := p.array(i, 0)
	if err == nil {
		if i = p.skip(i); i < len(text) {
			err = &TrainsetJSONError{Offset: i, Detail: "content after the array"}
		}
	}
	if err != nil {
		return [32]byte{}, err
	}
	return HashTrainset(examples)
}

// HashTrainsetJSONL returns the FORMAT.md §6 digest of a trainset written as
// JSON Lines (FORMAT.md §6.1): the text is split at "\n", a trailing "\r" of a
// line is removed, lines then empty or only spaces and tabs are skipped, and
// every other line is one example. Refusals are those of HashTrainsetJSON
// (but for the top-level array); a *TrainsetJSONError names the line and the
// byte offset from the start of the text.
func HashTrainsetJSONL(text []byte) ([32]byte, error) {
	if err := checkTrainsetText(text, true); err != nil {
		return [32]byte{}, err
	}
	var examples []any
	for start, line := 0, 1; start <= len(text); line++ {
		stop := len(text)
		if nl := bytes.IndexByte(text[start:], '\n'); nl >= 0 {
			stop = start + nl
		}
		end := stop
		if end > start && text[end-1] == '\r' {
			end--
		}
		if len(bytes.Trim(text[start:end], " \t")) > 0 {
			p := &jsonParser{data: text, end: end}
			v, i, err := p.value(p.skip(start), 1)
			if err == nil {
				if i = p.skip(i); i < end {
					err = &TrainsetJSONError{Offset: i, Detail: "content after the value"}
				}
			}
			if err != nil {
				err.Line = line
				return [32]byte{}, err
			}
			examples = append(examples, v)
		}
		start = stop + 1
	}
	return HashTrainset(examples)
}

// checkTrainsetText refuses oversize text, a byte order mark and text that
// is not UTF-8.
func checkTrainsetText(text []byte, lines bool) error {
	line := func(offset int) int {
		if !lines {
			return 0
		}
		return bytes.Count(text[:offset], []byte{'\n'}) + 1
	}
	if len(text) > MaxInputSize {
		return &TrainsetJSONError{Line: line(0), Detail: "text is " + strconv.Itoa(len(text)) +
			" bytes, more than the limit of " + strconv.Itoa(MaxInputSize) + " bytes"}
	}
	if bytes.HasPrefix(text, []byte("\xef\xbb\xbf")) {
		return &TrainsetJSONError{Line: line(0), Detail: "a byte order mark is not allowed"}
	}
	if utf8.Valid(text) {
		return nil
	}
	i := 0
	for i < len(text) {
		r, size := utf8.DecodeRune(text[i:])
		if r == utf8.RuneError && size <= 1 {
			break
		}
		i += size
	}
	return &TrainsetJSONError{Offset: i, Line: line(i), Detail: "not UTF-8"}
}

// jsonParser is a strict RFC 8259 parser of data[:end] building the values
// of FORMAT.md §6.1: nil, bool, int64, *big.Int, float64, string, []any and
// map[string]any. A value's level is the Term depth it would have; examples
// are at level 1.
type jsonParser struct {
	data []byte
	end  int
}

func refuse(offset int, detail string) *TrainsetJSONError {
	return &TrainsetJSONError{Offset: offset, Detail: detail}
}

func (p *jsonParser) skip(i int) int {
	for i < p.end {
		switch p.data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

func (p *jsonParser) value(i, level int) (any, int, *TrainsetJSONError) {
	if i >= p.end {
		return nil, i, refuse(i, "expected a value, found the end of the text")
	}
	if level > MaxTermDepth {
		return nil, i, refuse(i, "nesting deeper than "+strconv.Itoa(MaxTermDepth))
	}
	switch c := p.data[i]; {
	case c == '"':
		return p.string(i)
	case c == '-' || ('0' <= c && c <= '9'):
		return p.number(i)
	case c == '[':
		return p.array(i, level)
	case c == '{':
		return p.object(i, level)
	}
	for _, lit := range []struct {
		word  string
		value any
	}{{"true", true}, {"false", false}, {"null", nil}} {
		if bytes.HasPrefix(p.data[i:p.end], []byte(lit.word)) {
			return lit.value, i + len(lit.word), nil
		}
	}
	r, _ := utf8.DecodeRune(p.data[i:p.end])
	return nil, i, refuse(i, "expected a value, found "+strconv.QuoteRune(r))
}

func (p *jsonParser) array(i, level int) ([]any, int, *TrainsetJSONError) {
	items := []any{}
	i = p.skip(i + 1)
	if i < p.end && p.data[i] == ']' {
		return items, i + 1, nil
	}
	for {
		item, next, err := p.value(i, level+1)
		if err != nil {
			return nil, next, err
		}
		items = append(items, item)
		i = p.skip(next)
		switch {
		case i < p.end && p.data[i] == ',':
			i = p.skip(i + 1)
		case i < p.end && p.data[i] == ']':
			return items, i + 1, nil
		default:
			return nil, i, refuse(i, "expected ',' or ']' after an array item")
		}
	}
}

func (p *jsonParser) object(i, level int) (map[string]any, int, *TrainsetJSONError) {
	members := map[string]any{}
	i = p.skip(i + 1)
	if i < p.end && p.data[i] == '}' {
		return members, i + 1, nil
	}
	for {
		if i >= p.end || p.data[i] != '"' {
			return nil, i, refuse(i, "expected a string key")
		}
		key, next, err := p.string(i)
		if err != nil {
			return nil, next, err
		}
		if _, seen := members[key]; seen {
			return nil, i, refuse(i, "duplicate key "+showJSONKey(key))
		}
		i = p.skip(next)
		if i >= p.end || p.data[i] != ':' {
			return nil, i, refuse(i, "expected ':' after a key")
		}
		v, next, err := p.value(p.skip(i+1), level+1)
		if err != nil {
			return nil, next, err
		}
		members[key] = v
		i = p.skip(next)
		switch {
		case i < p.end && p.data[i] == ',':
			i = p.skip(i + 1)
		case i < p.end && p.data[i] == '}':
			return members, i + 1, nil
		default:
			return nil, i, refuse(i, "expected ',' or '}' after an object member")
		}
	}
}

var simpleEscapes = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

func (p *jsonParser) string(start int) (string, int, *TrainsetJSONError) {
	j := start + 1
	for j < p.end && p.data[j] != '"' && p.data[j] != '\\' && p.data[j] >= 0x20 {
		j++
	}
	if j < p.end && p.data[j] == '"' {
		return string(p.data[start+1 : j]), j + 1, nil
	}
	out := append([]byte(nil), p.data[start+1:j]...)
	for {
		if j >= p.end {
			return "", j, refuse(start, "unterminated string")
		}
		c := p.data[j]
		switch {
		case c == '"':
			return string(out), j + 1, nil
		case c < 0x20:
			return "", j, refuse(j, "control character U+"+hex4(rune(c))+" in a string")
		case c != '\\':
			out = append(out, c)
			j++
			continue
		}
		if j+1 < p.end && simpleEscapes[p.data[j+1]] != 0 {
			out = append(out, simpleEscapes[p.data[j+1]])
			j += 2
			continue
		}
		code, ok := p.hex4At(j)
		if !ok {
			return "", j, refuse(j, "invalid escape")
		}
		if 0xD800 <= code && code <= 0xDBFF {
			if low, ok := p.hex4At(j + 6); ok && 0xDC00 <= low && low <= 0xDFFF {
				out = utf8.AppendRune(out, 0x10000+((code-0xD800)<<10)+(low-0xDC00))
				j += 12
				continue
			}
		}
		if 0xD800 <= code && code <= 0xDFFF {
			return "", j, refuse(j, "lone surrogate escape \\u"+string(p.data[j+2:j+6])+" (not Unicode text)")
		}
		out = utf8.AppendRune(out, code)
		j += 6
	}
}

// hex4At reads the escape \uXXXX at j.
func (p *jsonParser) hex4At(j int) (rune, bool) {
	if j+6 > p.end || p.data[j] != '\\' || p.data[j+1] != 'u' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(p.data[j+2:j+6]), 16, 32)
	if err != nil {
		return 0, false
	}
	return rune(n), true
}

func hex4(r rune) string {
	s := strconv.FormatInt(int64(r), 16)
	for len(s) < 4 {
		s = "0" + s
	}
	return s
}

func (p *jsonParser) digits(i int) int {
	for i < p.end && '0' <= p.data[i] && p.data[i] <= '9' {
		i++
	}
	return i
}

func (p *jsonParser) number(start int) (any, int, *TrainsetJSONError) {
	bad := refuse(start, "invalid number (JSON has no leading zeros, NaN or Infinity)")
	i := start
	if p.data[i] == '-' {
		i++
	}
	switch {
	case i < p.end && p.data[i] == '0':
		i++
	case i < p.end && '1' <= p.data[i] && p.data[i] <= '9':
		i = p.digits(i)
	default:
		return nil, start, bad
	}
	isFloat := false
	if i < p.end && p.data[i] == '.' {
		if next := p.digits(i + 1); next > i+1 {
			i, isFloat = next, true
		}
	}
	if i < p.end && (p.data[i] == 'e' || p.data[i] == 'E') {
		j := i + 1
		if j < p.end && (p.data[j] == '+' || p.data[j] == '-') {
			j++
		}
		if next := p.digits(j); next > j {
			i, isFloat = next, true
		}
	}
	if i < p.end && bytes.IndexByte([]byte("0123456789.eE+-"), p.data[i]) >= 0 {
		return nil, start, bad
	}
	token := string(p.data[start:i])
	if isFloat {
		f, err := strconv.ParseFloat(token, 64)
		if math.IsInf(f, 0) {
			return nil, start, refuse(start, "number too large for a double")
		}
		var numErr *strconv.NumError
		if err != nil && !(errors.As(err, &numErr) && numErr.Err == strconv.ErrRange) {
			return nil, start, bad
		}
		return f, i, nil
	}
	digits := len(token)
	if token[0] == '-' {
		digits--
	}
	if digits > MaxIntegerDigits {
		return nil, start, refuse(start, "integer of "+strconv.Itoa(digits)+" digits, more than "+strconv.Itoa(MaxIntegerDigits))
	}
	if n, err := strconv.ParseInt(token, 10, 64); err == nil {
		return n, i, nil
	}
	n, ok := new(big.Int).SetString(token, 10)
	if !ok {
		return nil, start, bad
	}
	return n, i, nil
}

func showJSONKey(key string) string {
	if r := []rune(key); len(r) > 40 {
		key = string(r[:40]) + "…"
	}
	return strconv.QuoteToASCII(key)
}
