package checkpoint

import (
	"regexp"
	"sort"
	"strings"

	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"
	"google.golang.org/protobuf/proto"
)

// The credential screen of FORMAT.md §10, applied by every writer of this
// package (Encode refuses, EncodeRedacted redacts); Decode never screens.
//
// The key rule: an option key, or a string or atom map key, that names a
// credential (CredentialKey) may only hold null, a bool, a number, "" or
// Redacted. The value rule: no text (string or atom Term, option key,
// candidate id) may contain a secret of a well-known shape (HasSecret).

// Redacted is what redaction stores in place of a credential, and in place
// of each secret inside a text.
const Redacted = "[redacted]"

var (
	// A key holding one of these words anywhere names a credential.
	secretWords = wordSet("accesskey", "accesstoken", "apikey", "apikeys", "authorization",
		"authtoken", "bearer", "bearertoken", "clientsecret", "cookie", "cookies", "credential",
		"credentials", "creds", "idtoken", "jwt", "passphrase", "passwd", "password", "passwords",
		"privatekey", "refreshtoken", "secret", "secretkey", "secrets", "sessiontoken", "signingkey")
	// "key" or "keys" right after one of these names a credential.
	keyQualifiers = wordSet("access", "api", "client", "encryption", "master", "private",
		"secret", "session", "signing", "ssh")
	// A key whose last word is one of these names a credential.
	headWords = wordSet("auth", "token")
	// Credentials as URL query parameters (?key=…), besides the key rule.
	queryNames = wordSet("key", "sig", "signature")
)

// secretShape is a secret recognised by its shape; group is the capture
// group of the secret part (0: the whole match).
type secretShape struct {
	name    string
	pattern string
	group   int
	re      *regexp.Regexp
}

var secretShapes = compileShapes([]secretShape{
	{name: "bearer token", pattern: `\b[Bb][Ee][Aa][Rr][Ee][Rr][ \t]+([A-Za-z0-9._~+/-]{20,}=*)`, group: 1},
	{name: "sk- key", pattern: `\bsk-[A-Za-z0-9_-]{20,}`},
	{name: "GitHub token", pattern: `\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})`},
	{name: "Slack token", pattern: `\bxox[abposr]-[A-Za-z0-9-]{10,}`},
	{name: "AWS access key id", pattern: `\b(?:AKIA|ASIA)[A-Z0-9]{16}\b`},
	{name: "Google API key", pattern: `\bAIza[A-Za-z0-9_-]{35}`},
	{name: "Hugging Face token", pattern: `\bhf_[A-Za-z0-9]{30,}`},
	{name: "GitLab token", pattern: `\bglpat-[A-Za-z0-9_-]{20,}`},
	{name: "JWT", pattern: `\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*`},
	{name: "private key block", pattern: `-----BEGIN[A-Z ]*PRIVATE KEY-----(?:[\s\S]*?-----END[A-Z ]*PRIVATE KEY-----|[A-Za-z0-9+/=\r\n \t]*)`},
})

func compileShapes(shapes []secretShape) []secretShape {
	for i := range shapes {
		shapes[i].re = regexp.MustCompile(shapes[i].pattern)
	}
	return shapes
}

func wordSet(words ...string) map[string]bool {
	set := make(map[string]bool, len(words))
	for _, w := range words {
		set[w] = true
	}
	return set
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func isLower(c byte) bool { return c >= 'a' && c <= 'z' }

func isNameChar(c byte) bool {
	return isUpper(c) || isLower(c) || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'
}

// keyWords cuts a key into lower-case words (FORMAT.md §10): runs of ASCII
// letters, split before an upper-case letter that follows a lower-case one
// or that is followed by one ("APIKey" is "api", "key").
func keyWords(name string) []string {
	var words []string
	n := len(name)
	for i := 0; i < n; {
		if !isUpper(name[i]) && !isLower(name[i]) {
			i++
			continue
		}
		j := i + 1
		for j < n && (isUpper(name[j]) || isLower(name[j])) {
			if isUpper(name[j]) && (isLower(name[j-1]) || (j+1 < n && isLower(name[j+1]))) {
				break
			}
			j++
		}
		words = append(words, strings.ToLower(name[i:j]))
		i = j
	}
	return words
}

// CredentialKey reports whether a map or option key names a credential: one
// of its words is a credential word (password, secret, authorization…),
// "key" or "keys" follows a qualifier (api_key, access_key_id), or its last
// word is "token" or "auth" (hf_token; not token_count, not max_tokens).
func CredentialKey(name string) bool {
	words := keyWords(name)
	previous := ""
	for _, w := range words {
		if secretWords[w] || ((w == "key" || w == "keys") && keyQualifiers[previous]) {
			return true
		}
		previous = w
	}
	return len(words) > 0 && headWords[words[len(words)-1]]
}

// secretSpan is a secret part of a text: [start, end) in bytes.
type secretSpan struct {
	start, end int
	kind       string
}

func isSecretPart(text string, start, end int) bool {
	return end > start && text[start:end] != Redacted
}

func assignments(text string, spans []secretSpan) []secretSpan {
	for at := strings.IndexByte(text, '='); at != -1; {
		begin := at
		for begin > 0 && isNameChar(text[begin-1]) {
			begin--
		}
		name := text[begin:at]
		if name != "" && (CredentialKey(name) ||
			(begin > 0 && (text[begin-1] == '?' || text[begin-1] == '&') && queryNames[strings.ToLower(name)])) {
			start := at + 1
			if start < len(text) && (text[start] == '\'' || text[start] == '"') {
				start++
			}
			end := start
			for end < len(text) && !strings.ContainsRune(" \t\r\n&#'\"<>,;)", rune(text[end])) {
				end++
			}
			if isSecretPart(text, start, end) {
				spans = append(spans, secretSpan{start, end, "credential assignment"})
			}
		}
		next := strings.IndexByte(text[at+1:], '=')
		if next == -1 {
			break
		}
		at += 1 + next
	}
	return spans
}

func isQuote(c byte) bool { return c == '\'' || c == '"' }

func quotedPairs(text string, spans []secretSpan) []secretSpan {
	n := len(text)
	for at := strings.IndexByte(text, ':'); at != -1; {
		before := at
		for before > 0 && (text[before-1] == ' ' || text[before-1] == '\t') {
			before--
		}
		if before > 0 && isQuote(text[before-1]) {
			endName := before - 1
			begin := endName
			for begin > 0 && isNameChar(text[begin-1]) {
				begin--
			}
			if begin < endName && begin > 0 && isQuote(text[begin-1]) {
				after := at + 1
				for after < n && (text[after] == ' ' || text[after] == '\t') {
					after++
				}
				if after < n && isQuote(text[after]) && CredentialKey(text[begin:endName]) {
					quote := text[after]
					end := after + 1
					for end < n && text[end] != quote && text[end] != '\r' && text[end] != '\n' {
						end++
					}
					if end < n && text[end] == quote && isSecretPart(text, after+1, end) {
						spans = append(spans, secretSpan{after + 1, end, "credential pair"})
					}
				}
			}
		}
		next := strings.IndexByte(text[at+1:], ':')
		if next == -1 {
			break
		}
		at += 1 + next
	}
	return spans
}

func urlPasswords(text string, spans []secretSpan) []secretSpan {
	n := len(text)
	for at := strings.Index(text, "://"); at != -1; {
		i := at + 3
		for i < n && !strings.ContainsRune(" \t\r\n/?#@:", rune(text[i])) {
			i++
		}
		if i < n && text[i] == ':' {
			start := i + 1
			end := start
			for end < n && !strings.ContainsRune(" \t\r\n/?#@", rune(text[end])) {
				end++
			}
			if end < n && text[end] == '@' && isSecretPart(text, start, end) {
				spans = append(spans, secretSpan{start, end, "URL password"})
			}
		}
		next := strings.Index(text[at+3:], "://")
		if next == -1 {
			break
		}
		at += 3 + next
	}
	return spans
}

// secretSpans returns the secret parts of text, sorted, overlapping or
// touching ones merged.
func secretSpans(text string) []secretSpan {
	var found []secretSpan
	for _, shape := range secretShapes {
		for _, m := range shape.re.FindAllStringSubmatchIndex(text, -1) {
			start, end := m[2*shape.group], m[2*shape.group+1]
			if start >= 0 && isSecretPart(text, start, end) {
				found = append(found, secretSpan{start, end, shape.name})
			}
		}
	}
	if strings.Contains(text, "://") {
		found = urlPasswords(text, found)
	}
	if strings.IndexByte(text, '=') >= 0 {
		found = assignments(text, found)
	}
	if strings.IndexByte(text, ':') >= 0 {
		found = quotedPairs(text, found)
	}
	if len(found) < 2 {
		return found
	}
	sort.Slice(found, func(i, j int) bool {
		if found[i].start != found[j].start {
			return found[i].start < found[j].start
		}
		return found[i].end < found[j].end
	})
	merged := found[:1]
	for _, s := range found[1:] {
		last := &merged[len(merged)-1]
		if s.start <= last.end {
			if s.end > last.end {
				last.end = s.end
			}
			continue
		}
		merged = append(merged, s)
	}
	return merged
}

// HasSecret reports whether text holds a secret of the value rule of
// FORMAT.md §10 (a bearer token, a provider key, a JWT, a URL password, a
// credential assignment such as ?key=…, a quoted credential pair…).
func HasSecret(text string) bool { return len(secretSpans(text)) > 0 }

// RedactText returns text with each secret of the value rule replaced by
// Redacted, the rest kept.
func RedactText(text string) string { return replaceSpans(text, secretSpans(text)) }

func replaceSpans(text string, spans []secretSpan) string {
	if len(spans) == 0 {
		return text
	}
	var b strings.Builder
	last := 0
	for _, s := range spans {
		b.WriteString(text[last:s.start])
		b.WriteString(Redacted)
		last = s.end
	}
	b.WriteString(text[last:])
	return b.String()
}

func kindsOf(spans []secretSpan) string {
	var kinds []string
	seen := map[string]bool{}
	for _, s := range spans {
		if !seen[s.kind] {
			seen[s.kind] = true
			kinds = append(kinds, s.kind)
		}
	}
	return strings.Join(kinds, ", ")
}

func keyRefusal(path, what, name string) *InvalidCheckpoint {
	return invalid("", path, what+" "+quoteName(name)+" looks like a credential; "+
		"redact it (EncodeRedacted) to store a redaction marker instead of its value")
}

func textRefusal(path string, spans []secretSpan) *InvalidCheckpoint {
	return invalid("", path, "text holds a secret ("+kindsOf(spans)+"); redact it (EncodeRedacted) to store "+Redacted+" in its place")
}

func keyTextRefusal(path string, spans []secretSpan) *InvalidCheckpoint {
	return invalid("", path, "a key holds a secret ("+kindsOf(spans)+"); keys are never redacted")
}

func quoteName(name string) string { return "'" + name + "'" }

// harmless reports whether a value cannot carry a credential: null, a bool,
// a number, "" or Redacted.
func harmless(t *v1.Term) bool {
	switch k := t.GetKind().(type) {
	case *v1.Term_NullValue, *v1.Term_BoolValue, *v1.Term_IntValue, *v1.Term_BigintValue, *v1.Term_FloatValue:
		return true
	case *v1.Term_StringValue:
		return k.StringValue == "" || k.StringValue == Redacted
	}
	return false
}

func redactedTerm() *v1.Term {
	return &v1.Term{Kind: &v1.Term_StringValue{StringValue: Redacted}}
}

// credentialWalk screens Terms: it refuses the first finding, or with redact
// redacts every one it may.
type credentialWalk struct {
	redact bool
}

func (w *credentialWalk) text(text, path string) (string, *InvalidCheckpoint) {
	spans := secretSpans(text)
	if len(spans) == 0 {
		return text, nil
	}
	if !w.redact {
		return text, textRefusal(path, spans)
	}
	return replaceSpans(text, spans), nil
}

func (w *credentialWalk) term(t *v1.Term, path string, inKey bool) *InvalidCheckpoint {
	switch k := t.GetKind().(type) {
	case *v1.Term_StringValue:
		return w.termText(&k.StringValue, join(path, "string_value"), inKey)
	case *v1.Term_AtomValue:
		return w.termText(&k.AtomValue, join(path, "atom_value"), inKey)
	case *v1.Term_ListValue:
		return w.items(k.ListValue.GetItems(), join(path, "list_value"), inKey)
	case *v1.Term_TupleValue:
		return w.items(k.TupleValue.GetItems(), join(path, "tuple_value"), inKey)
	case *v1.Term_MapValue:
		return w.termMap(k.MapValue, join(path, "map_value"), inKey)
	}
	return nil
}

func (w *credentialWalk) termText(text *string, path string, inKey bool) *InvalidCheckpoint {
	spans := secretSpans(*text)
	if len(spans) == 0 {
		return nil
	}
	if inKey {
		return keyTextRefusal(path, spans)
	}
	if !w.redact {
		return textRefusal(path, spans)
	}
	*text = replaceSpans(*text, spans)
	return nil
}

func (w *credentialWalk) items(items []*v1.Term, path string, inKey bool) *InvalidCheckpoint {
	for i, it := range items {
		if err := w.term(it, index(path+".items", i), inKey); err != nil {
			return err
		}
	}
	return nil
}

func (w *credentialWalk) termMap(m *v1.TermMap, path string, inKey bool) *InvalidCheckpoint {
	for i, e := range m.GetEntries() {
		p := index(path+".entries", i)
		if err := w.term(e.GetKey(), p+".key", true); err != nil {
			return err
		}
		name, isText := "", false
		switch k := e.GetKey().GetKind().(type) {
		case *v1.Term_StringValue:
			name, isText = k.StringValue, true
		case *v1.Term_AtomValue:
			name, isText = k.AtomValue, true
		}
		if isText && CredentialKey(name) && !harmless(e.GetValue()) {
			if inKey || !w.redact {
				return keyRefusal(p+".key", "key", name)
			}
			e.Value = redactedTerm()
			continue
		}
		if err := w.term(e.GetValue(), p+".value", inKey); err != nil {
			return err
		}
	}
	return nil
}

func (w *credentialWalk) checkpoint(cp *v1.Checkpoint) *InvalidCheckpoint {
	for i, opt := range cp.GetOptimizerOpts() {
		p := index("optimizer_opts", i)
		if spans := secretSpans(opt.GetKey()); len(spans) > 0 {
			return keyTextRefusal(p+".key", spans)
		}
		if CredentialKey(opt.GetKey()) && !harmless(opt.GetValue()) {
			if !w.redact {
				return keyRefusal(p+".key", "option", opt.GetKey())
			}
			opt.Value = redactedTerm()
			continue
		}
		if err := w.term(opt.GetValue(), p+".value", false); err != nil {
			return err
		}
	}
	for i, e := range cp.GetProgress().GetTrialLog() {
		p := index("progress.trial_log", i)
		if e.CandidateId != nil {
			text, err := w.text(*e.CandidateId, p+".candidate_id")
			if err != nil {
				return err
			}
			*e.CandidateId = text
		}
		if e.GetStats() != nil {
			if err := w.termMap(e.GetStats(), p+".stats", false); err != nil {
				return err
			}
		}
		if e.GetError() != nil {
			if err := w.termMap(e.GetError(), p+".error", false); err != nil {
				return err
			}
		}
	}
	if a := cp.GetBestProgramArtifact(); a != nil {
		if err := w.termMap(a, "best_program_artifact", false); err != nil {
			return err
		}
	}
	if tr := cp.GetTerminalReason(); tr != nil {
		if err := w.term(tr, "terminal_reason", false); err != nil {
			return err
		}
	}
	return nil
}

// Screen applies the credential screen of FORMAT.md §10 to cp and returns
// its first finding (in the order of §7) as an *InvalidCheckpoint naming the
// path (e.g. "optimizer_opts[0].key",
// "progress.trial_log[3].error.entries[1].value.string_value"), or nil.
// Encode runs it after the reader's checks.
func Screen(cp *v1.Checkpoint) error {
	if err := (&credentialWalk{}).checkpoint(cp); err != nil {
		return err
	}
	return nil
}

// Redact redacts cp in place: the value of every option or map key that
// names a credential becomes Redacted, and every secret inside a text is
// replaced by Redacted. A secret inside a map key or an option key cannot be
// redacted: it is returned as an *InvalidCheckpoint (cp may then be partly
// redacted).
func Redact(cp *v1.Checkpoint) error {
	if err := (&credentialWalk{redact: true}).checkpoint(cp); err != nil {
		return err
	}
	return nil
}

// EncodeRedacted is Encode of a copy of cp whose credentials are redacted
// (see Redact); cp itself is not changed.
func EncodeRedacted(cp *v1.Checkpoint) ([]byte, error) {
	if err := validateCheckpoint(cp); err != nil {
		return nil, err
	}
	copied, _ := proto.Clone(cp).(*v1.Checkpoint)
	if err := Redact(copied); err != nil {
		return nil, err
	}
	return marshalCheckpoint(copied)
}
