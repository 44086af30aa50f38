/*
 * dsxir._accel: optional compiled fast paths of dsxir.optimizer_session.
 *
 * Several jobs, each with a pure-Python twin that gives identical results and that
 * the package falls back to when this module is missing or disabled
 * (DSXIR_PURE_PYTHON=1):
 *
 * check_canonical(data) -> bool
 *     Walks the bytes of a Checkpoint and answers whether validate.check
 *     would accept the message they parse to (FORMAT.md §1-§4). It only
 *     answers; the caller runs the Python check for the path and detail of a
 *     refusal.
 *     - On the output of upb's SerializeToString(deterministic=True) the
 *       answer is exact: known fields come in field-number order, each
 *       singular one once, unknown fields (including known numbers with
 *       another wire type) after them, and a map key's bytes are its
 *       canonical bytes.
 *     - On any other bytes that upb parses, True still means valid: what it
 *       cannot read the way upb does (a singular field written twice, which
 *       upb merges or overwrites; a Term with two kinds; a map key whose
 *       bytes are not canonical, on which the key order is defined) is
 *       answered with False, and the caller serializes and asks again.
 *     - On arbitrary bytes it never crashes nor reads out of bounds.
 *
 * check_screened(data) -> bool
 * screen_head(data) -> bool
 * screen_term(data) -> bool
 * screen_term_map(data) -> bool
 * screen_text(str) -> bool
 *     What writers ask: check_canonical (or check_term / the TermMap check on
 *     canonical Term or TermMap bytes), and in the same pass the credential
 *     screen of FORMAT.md §10 (credentials.py is the reference): the key rule
 *     on every option key and string or atom map key, and for every text a
 *     quick search for what each secret of the value rule must contain; a
 *     text that has it is handed to the function given to set_text_screen
 *     (credentials.has_secret), which decides. False means invalid, or a
 *     credential found (or an answer not given here): the caller then runs
 *     the Python code for the path, the detail or the redaction.
 *     screen_head screens the head of a delta (FORMAT.md §13) the same way,
 *     without the rules a head need not keep (required fields, trial
 *     indexes from 0, counters, best trial).
 *
 * term_bytes(value) -> bytes | None
 * map_body(dict) -> bytes | None
 * frame_terms(list | tuple) -> bytes | None
 *     The canonical Term bytes of plain Python values (exact types only),
 *     byte for byte what terms.term_bytes writes. None means "not handled
 *     here": the Python encoder then produces the bytes or the precise error.
 *
 * trial_columns(progress, cell_limit, term_value) -> tuple | False | None
 *     The trial log of the bytes of a Progress message as columns, value for
 *     value what columns.py reads from the parsed message: scalars of stats
 *     are built here, other Term kinds by term_value(term_bytes, index, key).
 *     False when the stats columns would exceed cell_limit cells; None for
 *     bytes it does not read the way upb does (a field written twice, an
 *     unknown status, text that is not UTF-8, malformed bytes). Never
 *     crashes nor reads out of bounds.
 *
 * grammar_check(data, root=0) -> bytes | (rule, path, detail)
 * grammar_scan(body, size, root=0) -> None | (rule, path, detail)
 * crc32c(data) -> int
 * seal(body) -> bytes
 *     The byte grammar of FORMAT.md section 2 (grammar.py is the reference,
 *     answer for answer: rule id, path and detail): the size limit, the
 *     trailer and its CRC-32C (SSE4.2's crc32 instruction when the processor
 *     has it, else slice by 8 in portable C), the strict scan in byte order
 *     and the weight limit. The field table is not written here:
 *     grammar.py builds it from the generated descriptors and hands it over
 *     with set_grammar_table on import. check_canonical and check_screened
 *     read bodies (the bytes before the trailer).
 *
 * read_checkpoint(data) -> bool | (rule, path, detail)
 *     decode's checks in one call: grammar_check of a Checkpoint, then
 *     check_canonical of the body it accepted.
 *
 * seal_screened(body) -> bytes | None
 *     encode's checks in one pass over the deterministic serialization of a
 *     message held in memory: check_screened, and the weight of §2.4
 *     counted by the same walk. The protobuf runtime wrote every known field
 *     (number order, minimal varints, no default of a field without
 *     presence, wire types of the schema, valid UTF-8, one kind per Term,
 *     bool 0/1, int32 and enums sign-extended), so of the grammar only what
 *     it does not guarantee is checked here: no unknown field anywhere
 *     (their place is the grammar's to judge), the Term depth, the size and
 *     the weight limits. Then the sealed bytes; None when any of it fails,
 *     and the caller takes the reference path (grammar, check, screen).
 *
 * set_atom_type(Atom) tells the encoder which class is the Atom of terms.py;
 * set_text_screen(has_secret) gives the screen its judge of texts.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#define MAX_TERM_DEPTH 24

/* Wire types. */
#define WT_VARINT 0
#define WT_I64 1
#define WT_LEN 2
#define WT_SGROUP 3
#define WT_EGROUP 4
#define WT_I32 5

/* upb's default recursion limit; deeper unknown groups cannot come from it. */
#define MAX_GROUP_DEPTH 100

/* ======================================================================== */
/* Reading the wire format                                                   */
/* ======================================================================== */

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} span;

/* A varint of at most 10 bytes, truncated to 64 bits as upb reads it. */
static inline int
read_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    const uint8_t *p = *pp;
    if (p < end && *p < 0x80) { /* the common one-byte case */
        *out = *p;
        *pp = p + 1;
        return 1;
    }
    uint64_t value = 0;
    for (int i = 0; i < 10; i++) {
        if (p >= end) {
            return 0;
        }
        uint8_t byte = *p++;
        value |= (uint64_t)(byte & 0x7F) << (7 * i);
        if (!(byte & 0x80)) {
            *pp = p;
            *out = value;
            return 1;
        }
    }
    return 0;
}

static inline int
read_tag(const uint8_t **pp, const uint8_t *end, uint32_t *number, int *wire_type)
{
    uint64_t tag;
    if (!read_varint(pp, end, &tag) || tag > UINT32_MAX || (tag >> 3) == 0) {
        return 0;
    }
    *number = (uint32_t)(tag >> 3);
    *wire_type = (int)(tag & 7);
    return 1;
}

static inline int
read_len(const uint8_t **pp, const uint8_t *end, span *out)
{
    uint64_t length;
    if (!read_varint(pp, end, &length) || length > (uint64_t)(end - *pp)) {
        return 0;
    }
    out->p = *pp;
    out->end = *pp + length;
    *pp = out->end;
    return 1;
}

static int
read_fixed64(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    if (end - *pp < 8) {
        return 0;
    }
    uint64_t value = 0;
    for (int i = 7; i >= 0; i--) {
        value = (value << 8) | (*pp)[i];
    }
    *pp += 8;
    *out = value;
    return 1;
}

static int skip_field(const uint8_t **pp, const uint8_t *end, uint32_t number,
                      int wire_type, int depth);

/* Skip the rest of a group up to its matching end tag. */
static int
skip_group(const uint8_t **pp, const uint8_t *end, uint32_t number, int depth)
{
    if (depth > MAX_GROUP_DEPTH) {
        return 0;
    }
    for (;;) {
        uint32_t inner;
        int wire_type;
        if (!read_tag(pp, end, &inner, &wire_type)) {
            return 0;
        }
        if (wire_type == WT_EGROUP) {
            return inner == number;
        }
        if (!skip_field(pp, end, inner, wire_type, depth + 1)) {
            return 0;
        }
    }
}

/* Skip the value of a field whose tag has been read (an unknown field). */
static int
skip_field(const uint8_t **pp, const uint8_t *end, uint32_t number, int wire_type,
           int depth)
{
    uint64_t ignored;
    span ignored_span;
    switch (wire_type) {
    case WT_VARINT:
        return read_varint(pp, end, &ignored);
    case WT_I64:
        return read_fixed64(pp, end, &ignored);
    case WT_LEN:
        return read_len(pp, end, &ignored_span);
    case WT_SGROUP:
        return skip_group(pp, end, number, depth);
    case WT_I32:
        if (end - *pp < 4) {
            return 0;
        }
        *pp += 4;
        return 1;
    default: /* an end-group tag out of place, or wire types 6 and 7 */
        return 0;
    }
}

/* Marks a singular field as seen; a second occurrence is unexpected. */
#define SEEN_ONCE(seen, number)                                                \
    do {                                                                       \
        if ((seen) & ((uint64_t)1 << (number))) {                              \
            return 0;                                                          \
        }                                                                      \
        (seen) |= (uint64_t)1 << (number);                                     \
    } while (0)

#define HAS(seen, number) (((seen) >> (number)) & 1)

/* ======================================================================== */
/* The credential screen (FORMAT.md §10; credentials.py is the reference)    */
/* ======================================================================== */

static PyObject *text_screen = NULL; /* credentials.has_secret, once set */

typedef struct {
    const char *text;
    size_t len;
} word;

#define WORD(text) {text, sizeof(text) - 1}
#define WORD_MAX 15 /* longer than every listed word: never one of them */

static const word SECRET_WORDS[] = {
    WORD("accesskey"),    WORD("accesstoken"),  WORD("apikey"),       WORD("apikeys"),
    WORD("authorization"), WORD("authtoken"),   WORD("bearer"),       WORD("bearertoken"),
    WORD("clientsecret"), WORD("cookie"),       WORD("cookies"),      WORD("credential"),
    WORD("credentials"),  WORD("creds"),        WORD("idtoken"),      WORD("jwt"),
    WORD("passphrase"),   WORD("passwd"),       WORD("password"),     WORD("passwords"),
    WORD("privatekey"),   WORD("refreshtoken"), WORD("secret"),       WORD("secretkey"),
    WORD("secrets"),      WORD("sessiontoken"), WORD("signingkey"),   {NULL, 0},
};
static const word KEY_QUALIFIERS[] = {
    WORD("access"),  WORD("api"),     WORD("client"),  WORD("encryption"),
    WORD("master"),  WORD("private"), WORD("secret"),  WORD("session"),
    WORD("signing"), WORD("ssh"),     {NULL, 0},
};
static const word HEAD_WORDS[] = {WORD("auth"), WORD("token"), {NULL, 0}};
static const word KEY_WORDS[] = {WORD("key"), WORD("keys"), {NULL, 0}};
static const word QUERY_NAMES[] = {WORD("key"), WORD("sig"), WORD("signature"), {NULL, 0}};

static inline int
is_upper(uint8_t c)
{
    return c >= 'A' && c <= 'Z';
}

static inline int
is_lower(uint8_t c)
{
    return c >= 'a' && c <= 'z';
}

static inline int
is_name_char(uint8_t c)
{
    return is_upper(c) || is_lower(c) || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-';
}

/* Each list is in alphabetical order; `first` of a list holds, for each
 * letter, the index of its first word starting with that letter or a later
 * one (27 entries: 'a'..'z' and the end), filled once by index_words. */
typedef struct {
    const word *list;
    uint8_t first[27];
} word_index;

static word_index SECRET_INDEX = {SECRET_WORDS, {0}};
static word_index QUALIFIER_INDEX = {KEY_QUALIFIERS, {0}};
static word_index HEAD_INDEX = {HEAD_WORDS, {0}};
static word_index KEY_INDEX = {KEY_WORDS, {0}};

static void
index_words(word_index *index)
{
    size_t n = 0;
    while (index->list[n].text != NULL) {
        n++;
    }
    size_t at = 0;
    for (int letter = 0; letter < 27; letter++) {
        while (at < n && index->list[at].text[0] - 'a' < letter) {
            at++;
        }
        index->first[letter] = (uint8_t)at;
    }
}

/* Whether the lower-case `text` is a word of the list. */
static int
word_in(const char *text, size_t len, const word_index *index)
{
    if (len == 0) {
        return 0;
    }
    int letter = text[0] - 'a';
    for (size_t i = index->first[letter]; i < index->first[letter + 1]; i++) {
        const word *w = &index->list[i];
        if (w->len == len && memcmp(w->text, text, len) == 0) {
            return 1;
        }
    }
    return 0;
}

/* credentials.credential_key: the words of the key (runs of ASCII letters,
 * split before an upper-case letter that follows a lower-case one or that is
 * followed by one), lower-cased; a word of SECRET_WORDS, key(s) right after
 * a word of KEY_QUALIFIERS, or a last word of HEAD_WORDS. */
static int
key_is_credential(const uint8_t *s, size_t n)
{
    char current[WORD_MAX], previous[WORD_MAX];
    size_t current_len = 0, previous_len = 0;
    int any = 0;
    size_t i = 0;
    while (i < n) {
        if (!is_upper(s[i]) && !is_lower(s[i])) {
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < n && (is_upper(s[j]) || is_lower(s[j]))) {
            if (is_upper(s[j]) && (is_lower(s[j - 1]) || (j + 1 < n && is_lower(s[j + 1])))) {
                break;
            }
            j++;
        }
        current_len = j - i <= WORD_MAX ? j - i : 0; /* too long: matches nothing */
        for (size_t k = 0; k < current_len; k++) {
            current[k] = (char)(is_upper(s[i + k]) ? s[i + k] + ('a' - 'A') : s[i + k]);
        }
        if (word_in(current, current_len, &SECRET_INDEX) ||
            (word_in(current, current_len, &KEY_INDEX) &&
             word_in(previous, previous_len, &QUALIFIER_INDEX))) {
            return 1;
        }
        memcpy(previous, current, current_len);
        previous_len = current_len;
        any = 1;
        i = j;
    }
    return any && word_in(previous, previous_len, &HEAD_INDEX);
}

static int
ascii_equal_nocase(const uint8_t *s, size_t n, const word *w)
{
    if (n != w->len) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t c = is_upper(s[i]) ? (uint8_t)(s[i] + ('a' - 'A')) : s[i];
        if (c != (uint8_t)w->text[i]) {
            return 0;
        }
    }
    return 1;
}

/* The '=' at `at`: its name (the run of name characters before it) names a
 * credential, or is key/sig/signature (a superset of what the value rule
 * asks of an assignment). */
static int
assignment_may_hold_secret(const uint8_t *s, size_t at)
{
    size_t begin = at;
    while (begin > 0 && is_name_char(s[begin - 1])) {
        begin--;
    }
    if (begin == at) {
        return 0;
    }
    if (key_is_credential(s + begin, at - begin)) {
        return 1;
    }
    for (const word *w = QUERY_NAMES; w->text != NULL; w++) {
        if (ascii_equal_nocase(s + begin, at - begin, w)) {
            return 1;
        }
    }
    return 0;
}

/* The ':' at `at` follows a quoted credential name ('api_key': …). */
static int
pair_may_hold_secret(const uint8_t *s, size_t at)
{
    size_t before = at;
    while (before > 0 && (s[before - 1] == ' ' || s[before - 1] == '\t')) {
        before--;
    }
    if (before == 0 || (s[before - 1] != '\'' && s[before - 1] != '"')) {
        return 0;
    }
    size_t end = before - 1, begin = end;
    while (begin > 0 && is_name_char(s[begin - 1])) {
        begin--;
    }
    return begin < end && begin > 0 && (s[begin - 1] == '\'' || s[begin - 1] == '"') &&
           key_is_credential(s + begin, end - begin);
}

/* Whether a text contains what every secret of the value rule contains:
 * credentials._ANCHOR, with '=' and ':' narrowed to a credential name. */
/* The bytes at which text_may_hold_secret looks further. */
static const uint8_t TRIGGERS[256] = {
    ['b'] = 1, ['B'] = 1, ['s'] = 1, ['g'] = 1, ['x'] = 1, ['A'] = 1,
    ['h'] = 1, ['e'] = 1, ['-'] = 1, [':'] = 1, ['='] = 1,
};

static int
text_may_hold_secret(const uint8_t *s, size_t n)
{
    static const word BEARER = WORD("bearer");
    for (size_t i = 0; i < n; i++) {
        if (!TRIGGERS[s[i]]) {
            continue;
        }
        const uint8_t *p = s + i;
        size_t left = n - i;
        switch (*p) {
        case 'b':
        case 'B':
            if (left >= 6 && ascii_equal_nocase(p, 6, &BEARER)) {
                return 1;
            }
            break;
        case 's':
            if (left >= 3 && p[1] == 'k' && p[2] == '-') {
                return 1;
            }
            break;
        case 'g':
            if (left >= 4 && p[1] == 'h' && p[3] == '_' &&
                (p[2] == 'p' || p[2] == 'o' || p[2] == 'u' || p[2] == 's' || p[2] == 'r')) {
                return 1;
            }
            if ((left >= 11 && memcmp(p, "github_pat_", 11) == 0) ||
                (left >= 6 && memcmp(p, "glpat-", 6) == 0)) {
                return 1;
            }
            break;
        case 'x':
            if (left >= 3 && p[1] == 'o' && p[2] == 'x') {
                return 1;
            }
            break;
        case 'A':
            if (left >= 4 && (memcmp(p, "AKIA", 4) == 0 || memcmp(p, "ASIA", 4) == 0 ||
                              memcmp(p, "AIza", 4) == 0)) {
                return 1;
            }
            break;
        case 'h':
            if (left >= 3 && p[1] == 'f' && p[2] == '_') {
                return 1;
            }
            break;
        case 'e':
            if (left >= 3 && p[1] == 'y' && p[2] == 'J') {
                return 1;
            }
            break;
        case '-':
            if (left >= 10 && memcmp(p, "-----BEGIN", 10) == 0) {
                return 1;
            }
            break;
        case ':':
            if ((left >= 3 && p[1] == '/' && p[2] == '/') || pair_may_hold_secret(s, i)) {
                return 1;
            }
            break;
        case '=':
            if (assignment_may_hold_secret(s, i)) {
                return 1;
            }
            break;
        default:
            break;
        }
    }
    return 0;
}

/* The screen of one call: NULL when not screening. Map keys repeat (the same
 * stats names in every trial), so keys found clean (not a credential name,
 * no secret inside) are remembered, by their bytes. */
#define KEY_CACHE 16
#define KEY_CACHE_MAX 32

typedef struct {
    uint8_t len[KEY_CACHE]; /* 0: an empty slot */
    uint8_t text[KEY_CACHE][KEY_CACHE_MAX];
} screen_ctx;

static size_t
key_slot(span text)
{
    size_t n = (size_t)(text.end - text.p);
    return (n * 7 + text.p[0] + 3u * text.p[n - 1] + 5u * text.p[n / 2]) % KEY_CACHE;
}

static int
key_known_clean(const screen_ctx *screen, span text)
{
    size_t n = (size_t)(text.end - text.p);
    if (n == 0 || n > KEY_CACHE_MAX) {
        return 0;
    }
    size_t slot = key_slot(text);
    return screen->len[slot] == n && memcmp(screen->text[slot], text.p, n) == 0;
}

static void
remember_clean_key(screen_ctx *screen, span text)
{
    size_t n = (size_t)(text.end - text.p);
    if (n == 0 || n > KEY_CACHE_MAX) {
        return;
    }
    size_t slot = key_slot(text);
    screen->len[slot] = (uint8_t)n;
    memcpy(screen->text[slot], text.p, n);
}

/* A text (UTF-8) without a secret of the value rule. */
static int
text_is_clean(span text)
{
    size_t n = (size_t)(text.end - text.p);
    if (!text_may_hold_secret(text.p, n)) {
        return 1;
    }
    if (text_screen == NULL) {
        return 0;
    }
    PyObject *str = PyUnicode_DecodeUTF8((const char *)text.p, (Py_ssize_t)n, NULL);
    if (str == NULL) {
        PyErr_Clear();
        return 0;
    }
    PyObject *found = PyObject_CallOneArg(text_screen, str);
    Py_DECREF(str);
    if (found == NULL) {
        PyErr_Clear();
        return 0;
    }
    int truth = PyObject_IsTrue(found);
    Py_DECREF(found);
    if (truth < 0) {
        PyErr_Clear();
        return 0;
    }
    return !truth;
}

/* The kind of a Term as upb reads it (the last kind field; 0 for none). */
static uint32_t
term_kind(span term, span *payload)
{
    static const int8_t wire_of[12] = {-1,     WT_LEN, WT_VARINT, WT_VARINT, WT_LEN, WT_I64,
                                       WT_LEN, WT_LEN, WT_LEN,    WT_LEN,    WT_LEN, WT_LEN};
    const uint8_t *p = term.p;
    uint32_t kind = 0;
    while (p < term.end) {
        uint32_t number;
        int wire_type;
        if (!read_tag(&p, term.end, &number, &wire_type)) {
            return 0;
        }
        if (number >= 1 && number <= 11 && wire_type == wire_of[number]) {
            kind = number;
            if (wire_type == WT_LEN) {
                if (!read_len(&p, term.end, payload)) {
                    return 0;
                }
                continue;
            }
        }
        if (!skip_field(&p, term.end, number, wire_type, 0)) {
            return 0;
        }
    }
    return kind;
}

/* A value that cannot carry a credential: null, bool, a number, "" or the
 * redaction marker. */
static int
is_harmless(span value)
{
    span text = {NULL, NULL};
    uint32_t kind = term_kind(value, &text);
    if (kind >= 1 && kind <= 5) {
        return 1;
    }
    if (kind != 6) {
        return 0;
    }
    size_t n = (size_t)(text.end - text.p);
    return n == 0 || (n == 10 && memcmp(text.p, "[redacted]", 10) == 0);
}


/* ======================================================================== */
/* check_canonical                                                           */
/* ======================================================================== */

static int
is_nan_bits(uint64_t bits)
{
    return (bits & 0x7FF0000000000000ULL) == 0x7FF0000000000000ULL &&
           (bits & 0x000FFFFFFFFFFFFFULL) != 0;
}

/* The message types the walk weighs (FORMAT.md §2.4): their weights come from
 * the grammar's field table (set_grammar_table finds them; walk_weighed says
 * it did). */
enum { W_TIMESTAMP, W_OPTION, W_PROGRESS, W_TRIAL, W_SAMPLER, W_TERM, W_NULL, W_LIST,
       W_MAP, W_ENTRY, W_COUNT };
static uint64_t walk_weight[W_COUNT];
static int walk_weighed = 0;

/* One walk of checkpoint bytes (check_checkpoint and its parts). */
typedef struct {
    screen_ctx *screen; /* the credential screen, or NULL: not screening */
    int head;           /* a delta's head: the screen only, no rule of completeness */
    int canonical;      /* the grammar holds, so every map key is its canonical bytes */
    int unknown;        /* an unknown field was skipped somewhere */
    uint64_t weight;    /* the weight of the known messages walked */
} walk;

#define WEIGH(w, type) ((w)->weight += walk_weight[type])

/* Skip an unknown field (or a known number with another wire type), noting it. */
static int
skip_unknown(walk *w, const uint8_t **pp, const uint8_t *end, uint32_t number, int wire_type)
{
    w->unknown = 1;
    return skip_field(pp, end, number, wire_type, 0);
}

static int check_map(span map, int depth, walk *w);

/* validate/terms._check: a Term message at `depth`; when screening, its texts
 * pass the value rule and its maps the key rule. */
static int
check_term(span term, int depth, walk *w)
{
    if (depth > MAX_TERM_DEPTH) {
        return 0;
    }
    const uint8_t *p = term.p;
    int kinds = 0;
    while (p < term.end) {
        uint32_t number;
        int wire_type;
        if (!read_tag(&p, term.end, &number, &wire_type)) {
            return 0;
        }
        span sub;
        uint64_t value;
        switch (number) {
        case 1: /* null_value */
        case 6: /* string_value */
        case 7: /* bytes_value */
        case 8: /* atom_value */
            if (wire_type != WT_LEN) {
                break;
            }
            if (!read_len(&p, term.end, &sub)) {
                return 0;
            }
            if (number == 1) {
                WEIGH(w, W_NULL);
                if (sub.end > sub.p) {
                    w->unknown = 1; /* TermNull has no field */
                }
            }
            else if (w->screen && (number == 6 || number == 8) && !text_is_clean(sub)) {
                return 0;
            }
            kinds++;
            continue;
        case 2: /* bool_value */
        case 3: /* int_value */
            if (wire_type != WT_VARINT) {
                break;
            }
            if (!read_varint(&p, term.end, &value)) {
                return 0;
            }
            kinds++;
            continue;
        case 4: /* bigint_value: minimal two's complement, outside int64 */
            if (wire_type != WT_LEN) {
                break;
            }
            if (!read_len(&p, term.end, &sub)) {
                return 0;
            }
            kinds++;
            if (sub.end - sub.p < 9) {
                return 0; /* empty, or fits in int64 once minimal */
            }
            if ((sub.p[0] == 0x00 && sub.p[1] < 0x80) ||
                (sub.p[0] == 0xFF && sub.p[1] >= 0x80)) {
                return 0;
            }
            continue;
        case 5: /* float_value */
            if (wire_type != WT_I64) {
                break;
            }
            if (!read_fixed64(&p, term.end, &value) || is_nan_bits(value)) {
                return 0;
            }
            kinds++;
            continue;
        case 9:  /* list_value */
        case 10: /* tuple_value */
            if (wire_type != WT_LEN) {
                break;
            }
            if (!read_len(&p, term.end, &sub)) {
                return 0;
            }
            kinds++;
            WEIGH(w, W_LIST);
            {
                const uint8_t *q = sub.p;
                while (q < sub.end) {
                    uint32_t item_number;
                    int item_wire_type;
                    if (!read_tag(&q, sub.end, &item_number, &item_wire_type)) {
                        return 0;
                    }
                    if (item_number == 1 && item_wire_type == WT_LEN) {
                        span item;
                        WEIGH(w, W_TERM);
                        if (!read_len(&q, sub.end, &item) ||
                            !check_term(item, depth + 1, w)) {
                            return 0;
                        }
                    }
                    else if (!skip_unknown(w, &q, sub.end, item_number, item_wire_type)) {
                        return 0;
                    }
                }
            }
            continue;
        case 11: /* map_value */
            if (wire_type != WT_LEN) {
                break;
            }
            WEIGH(w, W_MAP);
            if (!read_len(&p, term.end, &sub) || !check_map(sub, depth + 1, w)) {
                return 0;
            }
            kinds++;
            continue;
        default:
            break;
        }
        if (!skip_unknown(w, &p, term.end, number, wire_type)) {
            return 0;
        }
    }
    /* No kind: refused. Two kinds cannot come from upb (a oneof keeps one). */
    return kinds == 1;
}

/* ------------------------------------------------------------------------ */
/* Whether the bytes of a map key are its canonical bytes.                   */
/*                                                                          */
/* Key order is defined on canonical bytes. In upb's output every key is     */
/* canonical; in other input (decode checks the bytes it was given before    */
/* serializing anything) a key that is not is answered with False, so that   */
/* the caller re-serializes and asks again.                                  */
/* ------------------------------------------------------------------------ */

/* A varint as a canonical writer writes it: no trailing zero byte. */
static int
read_minimal_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    const uint8_t *start = *pp;
    if (!read_varint(pp, end, out)) {
        return 0;
    }
    return *pp - start == 1 || (*pp)[-1] != 0;
}

static int
read_minimal_len(const uint8_t **pp, const uint8_t *end, span *out)
{
    const uint8_t *start = *pp;
    if (!read_len(pp, end, out)) {
        return 0;
    }
    const uint8_t *after_length = out->p;
    return after_length - start == 1 || after_length[-1] != 0;
}

static int canonical_term(span term);

enum container { LIST, MAP, ENTRY };

/* A TermList (items, field 1), a TermMap (entries, field 1) or a
 * TermMapEntry (key 1 then value 2, once each): its known fields first, each
 * written minimally and canonical inside, then only unknown fields. */
static int
canonical_container(span message, enum container kind)
{
    const uint8_t *p = message.p;
    uint32_t last_known = 0;
    int unknown_seen = 0;
    while (p < message.end) {
        uint32_t number;
        int wire_type;
        const uint8_t *tag_at = p;
        if (!read_tag(&p, message.end, &number, &wire_type)) {
            return 0;
        }
        int known = wire_type == WT_LEN && (number == 1 || (kind == ENTRY && number == 2));
        if (!known) {
            unknown_seen = 1;
            if (!skip_field(&p, message.end, number, wire_type, 0)) {
                return 0;
            }
            continue;
        }
        if (unknown_seen || p - tag_at != 1 || (kind == ENTRY && number <= last_known)) {
            return 0;
        }
        last_known = number;
        span sub;
        if (!read_minimal_len(&p, message.end, &sub)) {
            return 0;
        }
        if (!(kind == MAP ? canonical_container(sub, ENTRY) : canonical_term(sub))) {
            return 0;
        }
    }
    return 1;
}

/* A Term whose only known field is its kind (check_term made sure). */
static int
canonical_term(span term)
{
    const uint8_t *p = term.p;
    if (p == term.end) {
        return 1;
    }
    uint32_t number;
    int wire_type;
    if (!read_tag(&p, term.end, &number, &wire_type) || p - term.p != 1) {
        return 0;
    }
    uint64_t value;
    span sub;
    switch (number) {
    case 1: case 4: case 6: case 7: case 8:
        if (wire_type == WT_LEN) {
            return read_minimal_len(&p, term.end, &sub);
        }
        break;
    case 2: /* bool: upb writes 0 or 1 */
        if (wire_type == WT_VARINT) {
            return read_minimal_varint(&p, term.end, &value) && value <= 1;
        }
        break;
    case 3: /* sint64: at most 64 bits, so a tenth byte can only be 1 */
        if (wire_type == WT_VARINT) {
            const uint8_t *start = p;
            return read_minimal_varint(&p, term.end, &value) &&
                   (p - start < 10 || p[-1] == 1);
        }
        break;
    case 5:
        if (wire_type == WT_I64) {
            return 1;
        }
        break;
    case 9: case 10: case 11:
        if (wire_type == WT_LEN) {
            if (!read_minimal_len(&p, term.end, &sub)) {
                return 0;
            }
            return canonical_container(sub, number == 11 ? MAP : LIST);
        }
        break;
    default:
        break;
    }
    /* The first field is not the kind: upb would write the kind first. */
    return 0;
}

/* Unsigned lexicographic order, a proper prefix first. */
static int
compare_bytes(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
    int c = memcmp(a, b, a_len < b_len ? a_len : b_len);
    if (c != 0) {
        return c;
    }
    return a_len < b_len ? -1 : (a_len > b_len ? 1 : 0);
}

/* terms._check_map: a TermMap whose keys and values are at `depth`. In the
 * canonical output the bytes of an entry's key are the key's canonical bytes. */
static int
check_map(span map, int depth, walk *w)
{
    const uint8_t *p = map.p;
    const uint8_t *previous = NULL;
    size_t previous_len = 0;
    while (p < map.end) {
        uint32_t number;
        int wire_type;
        if (!read_tag(&p, map.end, &number, &wire_type)) {
            return 0;
        }
        if (number != 1 || wire_type != WT_LEN) {
            if (!skip_unknown(w, &p, map.end, number, wire_type)) {
                return 0;
            }
            continue;
        }
        WEIGH(w, W_ENTRY);
        span entry, key = {NULL, NULL}, value = {NULL, NULL};
        if (!read_len(&p, map.end, &entry)) {
            return 0;
        }
        uint64_t seen = 0;
        const uint8_t *q = entry.p;
        while (q < entry.end) {
            uint32_t entry_number;
            int entry_wire_type;
            if (!read_tag(&q, entry.end, &entry_number, &entry_wire_type)) {
                return 0;
            }
            if ((entry_number == 1 || entry_number == 2) && entry_wire_type == WT_LEN) {
                SEEN_ONCE(seen, entry_number);
                WEIGH(w, W_TERM);
                if (!read_len(&q, entry.end, entry_number == 1 ? &key : &value)) {
                    return 0;
                }
            }
            else if (!skip_unknown(w, &q, entry.end, entry_number, entry_wire_type)) {
                return 0;
            }
        }
        if (!HAS(seen, 1) || !HAS(seen, 2)) {
            return 0;
        }
        /* The key rule on a string or atom key, unless known clean. */
        screen_ctx *screen = w->screen;
        span key_text = {NULL, NULL};
        uint32_t key_kind = screen ? term_kind(key, &key_text) : 0;
        int key_is_text = key_kind == 6 || key_kind == 8;
        int known = key_is_text && key_known_clean(screen, key_text);
        w->screen = known ? NULL : screen;
        int key_ok = check_term(key, depth, w);
        w->screen = screen;
        if (!key_ok || !check_term(value, depth, w) || (!w->canonical && !canonical_term(key))) {
            return 0;
        }
        if (key_is_text && !known) {
            if (key_is_credential(key_text.p, (size_t)(key_text.end - key_text.p))) {
                if (!is_harmless(value)) {
                    return 0;
                }
            }
            else {
                remember_clean_key(screen, key_text);
            }
        }
        size_t key_len = (size_t)(key.end - key.p);
        if (previous != NULL &&
            compare_bytes(key.p, key_len, previous, previous_len) <= 0) {
            return 0;
        }
        previous = key.p;
        previous_len = key_len;
    }
    return 1;
}

/* google.protobuf.Timestamp: 0 <= nanos < 1e9, 0001-01-01 <= seconds <= 9999-12-31. */
static int
check_timestamp(span stamp, walk *w)
{
    const uint8_t *p = stamp.p;
    uint64_t seen = 0, seconds = 0, nanos = 0;
    while (p < stamp.end) {
        uint32_t number;
        int wire_type;
        if (!read_tag(&p, stamp.end, &number, &wire_type)) {
            return 0;
        }
        if ((number == 1 || number == 2) && wire_type == WT_VARINT) {
            SEEN_ONCE(seen, number);
            if (!read_varint(&p, stamp.end, number == 1 ? &seconds : &nanos)) {
                return 0;
            }
        }
        else if (!skip_unknown(w, &p, stamp.end, number, wire_type)) {
            return 0;
        }
    }
    int32_t nanos32 = (int32_t)(uint32_t)nanos; /* an int32 field */
    int64_t seconds64 = (int64_t)seconds;
    return nanos32 >= 0 && nanos32 < 1000000000 && seconds64 >= -62135596800LL &&
           seconds64 <= 253402300799LL;
}

/* OptionEntry: a non-empty key and a valid Term value (screened: the key
 * passes the value rule and the key rule). */
static int
check_option(span option, walk *w)
{
    const uint8_t *p = option.p;
    uint64_t seen = 0;
    span key = {NULL, NULL}, value = {NULL, NULL};
    while (p < option.end) {
        uint32_t number;
        int wire_type;
        if (!read_tag(&p, option.end, &number, &wire_type)) {
            return 0;
        }
        if ((number == 1 || number == 2) && wire_type == WT_LEN) {
            SEEN_ONCE(seen, number);
            if (!read_len(&p, option.end, number == 1 ? &key : &value)) {
                return 0;
            }
        }
        else if (!skip_unknown(w, &p, option.end, number, wire_type)) {
            return 0;
        }
    }
    if (HAS(seen, 2)) {
        WEIGH(w, W_TERM);
    }
    if (!(HAS(seen, 1) && key.end > key.p && HAS(seen, 2) && check_term(value, 1, w))) {
        return 0;
    }
    return !w->screen ||
           (text_is_clean(key) &&
            (!key_is_credential(key.p, (size_t)(key.end - key.p)) || is_harmless(value)));
}

/* SamplerFormat: a non-empty module and a version of at least 1. */
static int
check_sampler_format(span sampler, walk *w)
{
    const uint8_t *p = sampler.p;
    uint64_t seen = 0, version = 0;
    span module = {NULL, NULL};
    while (p < sampler.end) {
        uint32_t number;
        int wire_type;
        if (!read_tag(&p, sampler.end, &number, &wire_type)) {
            return 0;
        }
        if (number == 1 && wire_type == WT_LEN) {
            SEEN_ONCE(seen, 1);
            if (!read_len(&p, sampler.end, &module)) {
                return 0;
            }
        }
        else if (number == 2 && wire_type == WT_VARINT) {
            SEEN_ONCE(seen, 2);
            if (!read_varint(&p, sampler.end, &version)) {
                return 0;
            }
        }
        else if (!skip_unknown(w, &p, sampler.end, number, wire_type)) {
            return 0;
        }
    }
    return HAS(seen, 1) && module.end > module.p && (uint32_t)version >= 1;
}

/* What the best-trial rule needs to know of one trial. */
typedef struct {
    int32_t status;
    int has_score;
    uint64_t score_bits;
} trial_facts;

/* TrialLogEntry number `index`. */
static int
check_trial(span trial, uint64_t index, trial_facts *facts, walk *w)
{
    const uint8_t *p = trial.p;
    uint64_t seen = 0, trial_idx = 0, status = 0, ignored;
    span sub;
    facts->has_score = 0;
    facts->score_bits = 0;
    while (p < trial.end) {
        uint32_t number;
        int wire_type;
        if (!read_tag(&p, trial.end, &number, &wire_type)) {
            return 0;
        }
        switch (number) {
        case 1: /* trial_idx */
        case 4: /* status */
        case 6: /* duration_ms */
            if (wire_type != WT_VARINT) {
                break;
            }
            SEEN_ONCE(seen, number);
            if (!read_varint(&p, trial.end,
                             number == 1 ? &trial_idx : (number == 4 ? &status : &ignored))) {
                return 0;
            }
            continue;
        case 2: /* candidate_id */
        case 8: /* error_class */
            if (wire_type != WT_LEN) {
                break;
            }
            SEEN_ONCE(seen, number);
            if (!read_len(&p, trial.end, &sub)) {
                return 0;
            }
            if (w->screen && number == 2 && !text_is_clean(sub)) {
                return 0;
            }
            continue;
        case 3: /* score */
            if (wire_type != WT_I64) {
                break;
            }
            SEEN_ONCE(seen, 3);
            if (!read_fixed64(&p, trial.end, &facts->score_bits) ||
                is_nan_bits(facts->score_bits)) {
                return 0;
            }
            facts->has_score = 1;
            continue;
        case 5: /* stats */
        case 7: /* error */
            if (wire_type != WT_LEN) {
                break;
            }
            SEEN_ONCE(seen, number);
            WEIGH(w, W_MAP);
            if (!read_len(&p, trial.end, &sub) || !check_map(sub, 2, w)) {
                return 0;
            }
            continue;
        default:
            break;
        }
        if (!skip_unknown(w, &p, trial.end, number, wire_type)) {
            return 0;
        }
    }
    facts->status = (int32_t)(uint32_t)status; /* an enum is an int32 */
    return w->head || (trial_idx == index && (facts->status == 1 || facts->status == 2));
}

/* Progress: the trial log, its counters, the best trial and started_at. */
static int
check_progress(span progress, walk *w)
{
    /* First the singular fields, so that the trial log is read knowing
     * which entry best_trial_idx names. */
    const uint8_t *p = progress.p;
    uint64_t seen = 0, best_bits = 0, best_idx = 0, attempts = 0, completed = 0,
             errors = 0;
    span started = {NULL, NULL}, sub;
    while (p < progress.end) {
        uint32_t number;
        int wire_type;
        if (!read_tag(&p, progress.end, &number, &wire_type)) {
            return 0;
        }
        if (number == 1 && wire_type == WT_LEN) {
            if (!read_len(&p, progress.end, &sub)) {
                return 0;
            }
        }
        else if (number == 2 && wire_type == WT_I64) {
            SEEN_ONCE(seen, 2);
            if (!read_fixed64(&p, progress.end, &best_bits)) {
                return 0;
            }
        }
        else if (number >= 3 && number <= 6 && wire_type == WT_VARINT) {
            SEEN_ONCE(seen, number);
            uint64_t *target = number == 3   ? &best_idx
                               : number == 4 ? &attempts
                               : number == 5 ? &completed
                                             : &errors;
            if (!read_varint(&p, progress.end, target)) {
                return 0;
            }
        }
        else if (number == 7 && wire_type == WT_LEN) {
            SEEN_ONCE(seen, 7);
            WEIGH(w, W_TIMESTAMP);
            if (!read_len(&p, progress.end, &started)) {
                return 0;
            }
        }
        else if (!skip_unknown(w, &p, progress.end, number, wire_type)) {
            return 0;
        }
    }
    int has_score = (int)HAS(seen, 2), has_idx = (int)HAS(seen, 3);

    uint64_t count = 0, ok = 0, error = 0;
    trial_facts facts, best = {0, 0, 0};
    p = progress.p;
    while (p < progress.end) {
        uint32_t number;
        int wire_type;
        if (!read_tag(&p, progress.end, &number, &wire_type)) {
            return 0;
        }
        if (number == 1 && wire_type == WT_LEN) {
            WEIGH(w, W_TRIAL);
            if (!read_len(&p, progress.end, &sub) ||
                !check_trial(sub, count, &facts, w)) {
                return 0;
            }
            if (facts.status == 1) {
                ok++;
            }
            else {
                error++;
            }
            if (has_idx && count == best_idx) {
                best = facts;
            }
            count++;
        }
        else if (!skip_field(&p, progress.end, number, wire_type, 0)) { /* seen above */
            return 0;
        }
    }

    if (w->head) {
        return !HAS(seen, 7) || check_timestamp(started, w);
    }
    if (!HAS(seen, 7) || !check_timestamp(started, w)) {
        return 0;
    }
    if (has_score && is_nan_bits(best_bits)) {
        return 0;
    }
    if (has_score != has_idx) {
        return 0;
    }
    if (has_idx && (best_idx >= count || best.status != 1 || !best.has_score ||
                    best.score_bits != best_bits)) {
        return 0;
    }
    return completed == ok && errors == error && attempts >= ok + error;
}

/* The format identifier: "dsxir.optimizer_session.checkpoint/v1.<minor>",
 * minor decimal without leading zeros (major 1 is the only one accepted). */
static int
check_format(span format)
{
    static const char prefix[] = "dsxir.optimizer_session.checkpoint/v1.";
    const size_t prefix_len = sizeof(prefix) - 1;
    size_t len = (size_t)(format.end - format.p);
    if (len <= prefix_len || memcmp(format.p, prefix, prefix_len) != 0) {
        return 0;
    }
    const uint8_t *minor = format.p + prefix_len;
    size_t minor_len = len - prefix_len;
    if (minor[0] == '0' && minor_len > 1) {
        return 0;
    }
    for (size_t i = 0; i < minor_len; i++) {
        if (minor[i] < '0' || minor[i] > '9') {
            return 0;
        }
    }
    return 1;
}

static int
check_checkpoint(span cp, walk *w)
{
    const uint8_t *p = cp.p;
    uint64_t seen = 0, status = 0, direction = 0;
    span format = {NULL, NULL}, session_id = {NULL, NULL}, optimizer = {NULL, NULL},
         program_module = {NULL, NULL}, trainset_hash = {NULL, NULL}, sub;
    while (p < cp.end) {
        uint32_t number;
        int wire_type;
        if (!read_tag(&p, cp.end, &number, &wire_type)) {
            return 0;
        }
        if (number == 13 || number == 15) {
            if (wire_type == WT_VARINT) {
                SEEN_ONCE(seen, number);
                if (!read_varint(&p, cp.end, number == 13 ? &status : &direction)) {
                    return 0;
                }
                continue;
            }
        }
        else if (number >= 1 && number <= 14 && wire_type == WT_LEN) {
            if (number != 4) {
                SEEN_ONCE(seen, number);
            }
            static const int8_t weighs[15] = {-1,         -1,         -1, -1, W_OPTION,
                                              -1,         -1,         W_TIMESTAMP,
                                              W_TIMESTAMP, W_PROGRESS, W_MAP, -1, W_SAMPLER,
                                              -1,         W_TERM};
            if (weighs[number] >= 0) {
                WEIGH(w, weighs[number]);
            }
            if (!read_len(&p, cp.end, &sub)) {
                return 0;
            }
            switch (number) {
            case 1:
                format = sub;
                break;
            case 2:
                session_id = sub;
                break;
            case 3:
                optimizer = sub;
                break;
            case 4:
                if (!check_option(sub, w)) {
                    return 0;
                }
                break;
            case 5:
                program_module = sub;
                break;
            case 6:
                trainset_hash = sub;
                break;
            case 7: /* created_at */
            case 8: /* updated_at */
                if (!check_timestamp(sub, w)) {
                    return 0;
                }
                break;
            case 9:
                if (!check_progress(sub, w)) {
                    return 0;
                }
                break;
            case 10: /* best_program_artifact */
                if (!check_map(sub, 2, w)) {
                    return 0;
                }
                break;
            case 11: /* sampler_blob: opaque */
                break;
            case 12:
                if (!check_sampler_format(sub, w)) {
                    return 0;
                }
                break;
            case 14: /* terminal_reason */
                if (!check_term(sub, 1, w)) {
                    return 0;
                }
                break;
            default:
                break;
            }
            continue;
        }
        if (!skip_unknown(w, &p, cp.end, number, wire_type)) {
            return 0;
        }
    }
    if (w->head) {
        return 1;
    }
    /* An enum is an int32: upb keeps the low 32 bits of the varint. */
    int32_t status32 = (int32_t)(uint32_t)status;
    int32_t direction32 = (int32_t)(uint32_t)direction;
    return HAS(seen, 1) && check_format(format) && session_id.end > session_id.p &&
           optimizer.end > optimizer.p &&
           (!HAS(seen, 5) || program_module.end > program_module.p) &&
           trainset_hash.end - trainset_hash.p == 32 && HAS(seen, 7) && HAS(seen, 8) &&
           HAS(seen, 9) && HAS(seen, 12) && status32 >= 1 && status32 <= 5 &&
           (direction32 == 0 || direction32 == 1);
}

enum checked { CHECKPOINT, CHECKPOINT_SCREENED, HEAD_SCREENED, TERM_SCREENED,
               TERM_MAP_SCREENED };

static PyObject *
check_buffer(PyObject *arg, enum checked what)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    span data = {(const uint8_t *)view.buf, (const uint8_t *)view.buf + view.len};
    int ok;
    screen_ctx screen;
    memset(screen.len, 0, sizeof screen.len);
    walk w = {what == CHECKPOINT ? NULL : &screen, what == HEAD_SCREENED, 0, 0, 0};
    switch (what) {
    case CHECKPOINT:
    case CHECKPOINT_SCREENED:
    case HEAD_SCREENED:
        ok = check_checkpoint(data, &w);
        break;
    case TERM_SCREENED:
        ok = check_term(data, 1, &w);
        break;
    default:
        ok = check_map(data, 2, &w);
        break;
    }
    PyBuffer_Release(&view);
    return PyBool_FromLong(ok);
}

static PyObject *
accel_check_canonical(PyObject *module, PyObject *arg)
{
    (void)module;
    return check_buffer(arg, CHECKPOINT);
}

static PyObject *
accel_check_screened(PyObject *module, PyObject *arg)
{
    (void)module;
    return check_buffer(arg, CHECKPOINT_SCREENED);
}

static PyObject *
accel_screen_head(PyObject *module, PyObject *arg)
{
    (void)module;
    return check_buffer(arg, HEAD_SCREENED);
}

static PyObject *
accel_screen_term(PyObject *module, PyObject *arg)
{
    (void)module;
    return check_buffer(arg, TERM_SCREENED);
}

static PyObject *
accel_screen_term_map(PyObject *module, PyObject *arg)
{
    (void)module;
    return check_buffer(arg, TERM_MAP_SCREENED);
}

/* The trial entries (field 1) of a Progress serialization, numbered from
 * `start`: (count, ok, errors) when each keeps the rules of check_trial, else
 * None. The other fields of the Progress are skipped, not checked. */
static PyObject *
accel_check_trials(PyObject *module, PyObject *args)
{
    (void)module;
    Py_buffer view;
    PyObject *first;
    if (!PyArg_ParseTuple(args, "y*O!:check_trials", &view, &PyLong_Type, &first)) {
        return NULL;
    }
    unsigned long long start = PyLong_AsUnsignedLongLong(first); /* refuses a negative */
    if (start == (unsigned long long)-1 && PyErr_Occurred()) {
        PyBuffer_Release(&view);
        return NULL;
    }
    const uint8_t *p = (const uint8_t *)view.buf, *end = p + view.len;
    walk w = {NULL, 0, 0, 0, 0};
    uint64_t count = 0, ok = 0, error = 0;
    int good = 1;
    Py_BEGIN_ALLOW_THREADS
    while (good && p < end) {
        uint32_t number;
        int wire_type;
        span sub;
        trial_facts facts;
        if (!read_tag(&p, end, &number, &wire_type)) {
            good = 0;
        }
        else if (number == 1 && wire_type == WT_LEN) {
            if (start + count < start || /* past 2^64 - 1: no trial_idx is that */
                !read_len(&p, end, &sub) || !check_trial(sub, start + count, &facts, &w)) {
                good = 0;
            }
            else {
                ok += facts.status == 1;
                error += facts.status != 1;
                count++;
            }
        }
        else if (!skip_field(&p, end, number, wire_type, 0)) {
            good = 0;
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (!good) {
        Py_RETURN_NONE;
    }
    return Py_BuildValue("(KKK)", (unsigned long long)count, (unsigned long long)ok,
                         (unsigned long long)error);
}

static PyObject *
accel_screen_text(PyObject *module, PyObject *text)
{
    (void)module;
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "screen_text takes a str");
        return NULL;
    }
    Py_ssize_t n;
    const char *raw = PyUnicode_AsUTF8AndSize(text, &n);
    if (raw == NULL) { /* a lone surrogate: let Python judge */
        PyErr_Clear();
        Py_RETURN_FALSE;
    }
    span whole = {(const uint8_t *)raw, (const uint8_t *)raw + n};
    return PyBool_FromLong(text_is_clean(whole));
}

static PyObject *
accel_set_text_screen(PyObject *module, PyObject *judge)
{
    (void)module;
    if (!PyCallable_Check(judge)) {
        PyErr_SetString(PyExc_TypeError, "set_text_screen takes a callable");
        return NULL;
    }
    Py_XSETREF(text_screen, Py_NewRef(judge));
    Py_RETURN_NONE;
}

/* ======================================================================== */
/* Encoding Python values as canonical Terms                                  */
/* ======================================================================== */

/* Results of the encoder: done, not handled here (the caller returns None),
 * or a Python exception is set (MemoryError only). */
#define ENC_OK 0
#define ENC_DECLINE 1
#define ENC_ERROR (-1)

typedef struct {
    uint8_t *data;
    Py_ssize_t len;
    Py_ssize_t cap;
} buffer;

static PyObject *atom_type = NULL;     /* terms.Atom, once set_atom_type ran */
static PyObject *str_name = NULL;      /* "name" */
static PyObject *str_to_bytes = NULL;  /* "to_bytes" */
static PyObject *str_bit_length = NULL; /* "bit_length" */
static PyObject *signed_kwargs = NULL; /* {"signed": True} */
static PyObject *str_big = NULL;       /* "big" */

static int
grow(buffer *b, Py_ssize_t extra)
{
    if (b->cap - b->len >= extra) {
        return ENC_OK;
    }
    if (extra > PY_SSIZE_T_MAX / 2 - b->len) {
        PyErr_NoMemory();
        return ENC_ERROR;
    }
    Py_ssize_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra) {
        cap *= 2;
    }
    uint8_t *data = PyMem_Realloc(b->data, (size_t)cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return ENC_ERROR;
    }
    b->data = data;
    b->cap = cap;
    return ENC_OK;
}

static int
varint_size(uint64_t n)
{
    int size = 1;
    while (n >= 0x80) {
        n >>= 7;
        size++;
    }
    return size;
}

/* Writes a varint; the room must have been made. */
static void
put_varint(buffer *b, uint64_t n)
{
    while (n >= 0x80) {
        b->data[b->len++] = (uint8_t)((n & 0x7F) | 0x80);
        n >>= 7;
    }
    b->data[b->len++] = (uint8_t)n;
}

/* tag, length, bytes */
static int
put_delimited(buffer *b, uint8_t tag, const void *raw, Py_ssize_t n)
{
    if (grow(b, 11 + n) < 0) {
        return ENC_ERROR;
    }
    b->data[b->len++] = tag;
    put_varint(b, (uint64_t)n);
    if (n) {
        memcpy(b->data + b->len, raw, (size_t)n);
    }
    b->len += n;
    return ENC_OK;
}

/* Starts a length-delimited field whose content comes next: writes the tag
 * and one byte for the length, and returns where the content starts. */
static Py_ssize_t
open_delimited(buffer *b, uint8_t tag)
{
    if (grow(b, 2) < 0) {
        return -1;
    }
    b->data[b->len++] = tag;
    b->len++;
    return b->len;
}

/* Writes the length of the content that started at `start`, moving the
 * content when the length takes more than one byte. */
static int
close_delimited(buffer *b, Py_ssize_t start)
{
    Py_ssize_t n = b->len - start;
    if (n < 0x80) {
        b->data[start - 1] = (uint8_t)n;
        return ENC_OK;
    }
    int size = varint_size((uint64_t)n);
    if (grow(b, size - 1) < 0) {
        return ENC_ERROR;
    }
    memmove(b->data + start + size - 1, b->data + start, (size_t)n);
    Py_ssize_t end = b->len + size - 1;
    b->len = start - 1;
    put_varint(b, (uint64_t)n);
    b->len = end;
    return ENC_OK;
}

/* A failure inside CPython: MemoryError goes up, anything else is declined. */
static int
decline_or_error(void)
{
    if (PyErr_ExceptionMatches(PyExc_MemoryError)) {
        return ENC_ERROR;
    }
    PyErr_Clear();
    return ENC_DECLINE;
}

static int
put_text(buffer *b, uint8_t tag, PyObject *text)
{
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0) {
        return decline_or_error();
    }
#endif
    if (PyUnicode_IS_ASCII(text)) {
        return put_delimited(b, tag, PyUnicode_DATA(text), PyUnicode_GET_LENGTH(text));
    }
    /* Not ASCII: a temporary UTF-8 copy (lone surrogates fail: declined). */
    PyObject *raw = PyUnicode_AsUTF8String(text);
    if (raw == NULL) {
        return decline_or_error();
    }
    int rc = put_delimited(b, tag, PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw));
    Py_DECREF(raw);
    return rc;
}

/* An int outside int64: bigint_value, minimal two's complement, big-endian,
 * (~v if v < 0 else v).bit_length() // 8 + 1 bytes, as terms._enc_int. */
static int
put_bigint(buffer *b, PyObject *value, int negative)
{
    PyObject *magnitude = negative ? PyNumber_Invert(value) : Py_NewRef(value);
    if (magnitude == NULL) {
        return decline_or_error();
    }
    PyObject *bits = PyObject_CallMethodNoArgs(magnitude, str_bit_length);
    Py_DECREF(magnitude);
    if (bits == NULL) {
        return decline_or_error();
    }
    Py_ssize_t n_bits = PyLong_AsSsize_t(bits);
    Py_DECREF(bits);
    if (n_bits < 0) {
        return decline_or_error();
    }
    PyObject *length = PyLong_FromSsize_t((n_bits + 8) / 8);
    if (length == NULL) {
        return decline_or_error();
    }
    PyObject *to_bytes = PyObject_GetAttr(value, str_to_bytes);
    if (to_bytes == NULL) {
        Py_DECREF(length);
        return decline_or_error();
    }
    PyObject *args = PyTuple_Pack(2, length, str_big);
    Py_DECREF(length);
    if (args == NULL) {
        Py_DECREF(to_bytes);
        return decline_or_error();
    }
    PyObject *raw = PyObject_Call(to_bytes, args, signed_kwargs);
    Py_DECREF(args);
    Py_DECREF(to_bytes);
    if (raw == NULL) {
        return decline_or_error();
    }
    if (!PyBytes_CheckExact(raw)) {
        Py_DECREF(raw);
        return ENC_DECLINE;
    }
    int rc = put_delimited(b, 0x22, PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw));
    Py_DECREF(raw);
    return rc;
}

static int encode_term(buffer *b, PyObject *value, int depth);

/* The items of a list or tuple, each framed as TermList.items (field 1). */
static int
encode_items(buffer *b, PyObject *sequence, int depth)
{
    int is_list = PyList_CheckExact(sequence);
    for (Py_ssize_t i = 0;; i++) {
        Py_ssize_t size = is_list ? PyList_GET_SIZE(sequence) : PyTuple_GET_SIZE(sequence);
        if (i >= size) {
            return ENC_OK;
        }
        PyObject *item =
            is_list ? PyList_GET_ITEM(sequence, i) : PyTuple_GET_ITEM(sequence, i);
        Py_INCREF(item);
        Py_ssize_t start = open_delimited(b, 0x0A);
        int rc = start < 0 ? ENC_ERROR : encode_term(b, item, depth);
        Py_DECREF(item);
        if (rc != ENC_OK) {
            return rc;
        }
        if (close_delimited(b, start) < 0) {
            return ENC_ERROR;
        }
    }
}

typedef struct {
    Py_ssize_t key_at, key_len, value_at, value_len;
} entry_span;

static int
entry_less(const uint8_t *base, const entry_span *a, const entry_span *b)
{
    return compare_bytes(base + a->key_at, (size_t)a->key_len, base + b->key_at,
                         (size_t)b->key_len) < 0;
}

/* Sorts entries by key bytes (a stable merge sort; keys are distinct by the
 * time it matters, duplicates are found next to each other afterwards). */
static void
sort_entries(const uint8_t *base, entry_span *items, entry_span *scratch, Py_ssize_t n)
{
    if (n < 2) {
        return;
    }
    if (n <= 8) {
        for (Py_ssize_t i = 1; i < n; i++) {
            entry_span current = items[i];
            Py_ssize_t j = i;
            while (j > 0 && entry_less(base, &current, &items[j - 1])) {
                items[j] = items[j - 1];
                j--;
            }
            items[j] = current;
        }
        return;
    }
    Py_ssize_t half = n / 2;
    sort_entries(base, items, scratch, half);
    sort_entries(base, items + half, scratch, n - half);
    Py_ssize_t i = 0, j = half, k = 0;
    while (i < half && j < n) {
        scratch[k++] = entry_less(base, &items[j], &items[i]) ? items[j++] : items[i++];
    }
    while (i < half) {
        scratch[k++] = items[i++];
    }
    while (j < n) {
        scratch[k++] = items[j++];
    }
    memcpy(items, scratch, (size_t)n * sizeof(entry_span));
}

/* The body of a TermMap of a dict: entries sorted by the canonical bytes of
 * their key, keys and values encoded at `depth`. */
static int
encode_map_body(buffer *b, PyObject *dict, int depth)
{
    Py_ssize_t n = PyDict_GET_SIZE(dict);
    if (n == 0) {
        return ENC_OK;
    }
    entry_span small[2 * 8];
    entry_span *entries = small;
    if (n > 8) {
        if ((size_t)n > PY_SSIZE_T_MAX / (2 * sizeof(entry_span))) {
            PyErr_NoMemory();
            return ENC_ERROR;
        }
        entries = PyMem_Malloc((size_t)(2 * n) * sizeof(entry_span));
        if (entries == NULL) {
            PyErr_NoMemory();
            return ENC_ERROR;
        }
    }
    int rc = ENC_OK;
    Py_ssize_t start = b->len, pos = 0, count = 0;
    PyObject *key, *value;
    while (PyDict_Next(dict, &pos, &key, &value)) {
        if (count >= n) { /* the dict changed size: leave it to Python */
            rc = ENC_DECLINE;
            goto done;
        }
        Py_INCREF(key);
        Py_INCREF(value);
        entry_span *e = &entries[count++];
        e->key_at = b->len;
        rc = encode_term(b, key, depth);
        e->key_len = b->len - e->key_at;
        e->value_at = b->len;
        if (rc == ENC_OK) {
            rc = encode_term(b, value, depth);
        }
        e->value_len = b->len - e->value_at;
        Py_DECREF(key);
        Py_DECREF(value);
        if (rc != ENC_OK) {
            goto done;
        }
    }
    if (count != n) {
        rc = ENC_DECLINE;
        goto done;
    }
    sort_entries(b->data, entries, entries + n, n);
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        entry_span *e = &entries[i];
        if (i > 0 && compare_bytes(b->data + e->key_at, (size_t)e->key_len,
                                   b->data + entries[i - 1].key_at,
                                   (size_t)entries[i - 1].key_len) == 0) {
            rc = ENC_DECLINE; /* a duplicate key: Python names it */
            goto done;
        }
        Py_ssize_t inner = 1 + varint_size((uint64_t)e->key_len) + e->key_len + 1 +
                           varint_size((uint64_t)e->value_len) + e->value_len;
        total += 1 + varint_size((uint64_t)inner) + inner;
    }
    Py_ssize_t raw_end = b->len;
    if (grow(b, total) < 0) {
        rc = ENC_ERROR;
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        entry_span *e = &entries[i];
        Py_ssize_t inner = 1 + varint_size((uint64_t)e->key_len) + e->key_len + 1 +
                           varint_size((uint64_t)e->value_len) + e->value_len;
        b->data[b->len++] = 0x0A;
        put_varint(b, (uint64_t)inner);
        b->data[b->len++] = 0x0A;
        put_varint(b, (uint64_t)e->key_len);
        memcpy(b->data + b->len, b->data + e->key_at, (size_t)e->key_len);
        b->len += e->key_len;
        b->data[b->len++] = 0x12;
        put_varint(b, (uint64_t)e->value_len);
        memcpy(b->data + b->len, b->data + e->value_at, (size_t)e->value_len);
        b->len += e->value_len;
    }
    memmove(b->data + start, b->data + raw_end, (size_t)total);
    b->len = start + total;
done:
    if (entries != small) {
        PyMem_Free(entries);
    }
    return rc;
}

/* terms._encode for the exact types; a Term message at `depth`. */
static int
encode_term(buffer *b, PyObject *value, int depth)
{
    if (depth > MAX_TERM_DEPTH) {
        return ENC_DECLINE;
    }
    PyTypeObject *type = Py_TYPE(value);
    if (value == Py_None) {
        if (grow(b, 2) < 0) {
            return ENC_ERROR;
        }
        b->data[b->len++] = 0x0A;
        b->data[b->len++] = 0x00;
        return ENC_OK;
    }
    if (type == &PyBool_Type) {
        if (grow(b, 2) < 0) {
            return ENC_ERROR;
        }
        b->data[b->len++] = 0x10;
        b->data[b->len++] = value == Py_True ? 0x01 : 0x00;
        return ENC_OK;
    }
    if (type == &PyLong_Type) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow) {
            return put_bigint(b, value, overflow < 0);
        }
        if (v == -1 && PyErr_Occurred()) {
            return decline_or_error();
        }
        if (grow(b, 11) < 0) {
            return ENC_ERROR;
        }
        uint64_t u = (uint64_t)v;
        b->data[b->len++] = 0x18;
        put_varint(b, (u << 1) ^ (v < 0 ? UINT64_MAX : 0)); /* zig-zag */
        return ENC_OK;
    }
    if (type == &PyFloat_Type) {
        double d = PyFloat_AS_DOUBLE(value);
        uint64_t bits;
        memcpy(&bits, &d, sizeof bits);
        if (is_nan_bits(bits)) {
            return ENC_DECLINE;
        }
        if (grow(b, 9) < 0) {
            return ENC_ERROR;
        }
        b->data[b->len++] = 0x29;
        for (int i = 0; i < 8; i++) {
            b->data[b->len++] = (uint8_t)(bits >> (8 * i));
        }
        return ENC_OK;
    }
    if (type == &PyUnicode_Type) {
        return put_text(b, 0x32, value);
    }
    if (type == &PyBytes_Type) {
        return put_delimited(b, 0x3A, PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value));
    }
    if (type == &PyByteArray_Type) {
        return put_delimited(b, 0x3A, PyByteArray_AS_STRING(value),
                             PyByteArray_GET_SIZE(value));
    }
    if (type == &PyList_Type || type == &PyTuple_Type || type == &PyDict_Type) {
        Py_ssize_t start = open_delimited(b, type == &PyList_Type    ? 0x4A
                                             : type == &PyTuple_Type ? 0x52
                                                                     : 0x5A);
        if (start < 0) {
            return ENC_ERROR;
        }
        int rc = type == &PyDict_Type ? encode_map_body(b, value, depth + 1)
                                      : encode_items(b, value, depth + 1);
        if (rc != ENC_OK) {
            return rc;
        }
        return close_delimited(b, start);
    }
    if (atom_type != NULL && (PyObject *)type == atom_type) {
        PyObject *name = PyObject_GetAttr(value, str_name);
        if (name == NULL) {
            return decline_or_error();
        }
        int rc = PyUnicode_CheckExact(name) ? put_text(b, 0x42, name) : ENC_DECLINE;
        Py_DECREF(name);
        return rc;
    }
    return ENC_DECLINE;
}

static PyObject *
finish(buffer *b, int rc, Py_ssize_t skip)
{
    PyObject *result;
    if (rc == ENC_OK) {
        result = PyBytes_FromStringAndSize((const char *)b->data + skip, b->len - skip);
    }
    else if (rc == ENC_DECLINE) {
        result = Py_NewRef(Py_None);
    }
    else {
        result = NULL;
    }
    PyMem_Free(b->data);
    return result;
}

static PyObject *
accel_term_bytes(PyObject *module, PyObject *value)
{
    (void)module;
    buffer b = {NULL, 0, 0};
    int rc = encode_term(&b, value, 1);
    return finish(&b, rc, 0);
}

static PyObject *
accel_map_body(PyObject *module, PyObject *value)
{
    (void)module;
    if (!PyDict_CheckExact(value)) {
        Py_RETURN_NONE;
    }
    buffer b = {NULL, 0, 0};
    int rc = encode_map_body(&b, value, 2);
    if (rc == ENC_OK && b.data == NULL) {
        PyMem_Free(b.data);
        return PyBytes_FromStringAndSize(NULL, 0);
    }
    return finish(&b, rc, 0);
}

static PyObject *
accel_frame_terms(PyObject *module, PyObject *examples)
{
    (void)module;
    int is_list = PyList_CheckExact(examples);
    if (!is_list && !PyTuple_CheckExact(examples)) {
        Py_RETURN_NONE;
    }
    buffer b = {NULL, 0, 0};
    int rc = ENC_OK;
    for (Py_ssize_t i = 0; rc == ENC_OK; i++) {
        Py_ssize_t size = is_list ? PyList_GET_SIZE(examples) : PyTuple_GET_SIZE(examples);
        if (i >= size) {
            break;
        }
        PyObject *item = is_list ? PyList_GET_ITEM(examples, i) : PyTuple_GET_ITEM(examples, i);
        if (grow(&b, 8) < 0) {
            rc = ENC_ERROR;
            break;
        }
        Py_ssize_t at = b.len;
        b.len += 8;
        Py_INCREF(item);
        rc = encode_term(&b, item, 1);
        Py_DECREF(item);
        uint64_t n = (uint64_t)(b.len - at - 8);
        for (int k = 0; k < 8 && rc == ENC_OK; k++) {
            b.data[at + k] = (uint8_t)(n >> (8 * (7 - k)));
        }
    }
    if (rc == ENC_OK && b.data == NULL) {
        return PyBytes_FromStringAndSize(NULL, 0);
    }
    return finish(&b, rc, 0);
}

/* ======================================================================== */
/* trial_columns: the trial log as columns                                   */
/* ======================================================================== */

/* Results of the column reader: done, not handled here (the caller returns
 * None and the pure-Python reader answers), the cell limit reached (the
 * caller returns False), or a Python exception is set. */
#define COL_OK 0
#define COL_DECLINE 1
#define COL_LIMIT 2
#define COL_ERROR (-1)

#define COLUMN_CACHE 16 /* stats keys remembered by position in their map */

static PyObject *str_ok = NULL;    /* "ok" */
static PyObject *str_error = NULL; /* "error" */

typedef struct {
    const uint8_t *p;  /* the key's UTF-8 bytes, inside the input */
    Py_ssize_t len;
    PyObject *key;     /* borrowed from `stats` */
    PyObject *column;  /* borrowed from `stats` */
} column_slot;

typedef struct {
    Py_ssize_t n;          /* trials, the length of every column */
    PyObject *fixed[6];    /* trial_idx, candidate_id, score, status, duration_ms, error_class */
    PyObject *stats;       /* key str -> list of n values */
    Py_ssize_t cells;      /* n * len(stats) */
    Py_ssize_t cell_limit;
    PyObject *term_value;  /* term_value(term_bytes, trial_index, key) for other kinds */
    column_slot slots[COLUMN_CACHE];
    span last_error_class; /* the bytes of the last error_class read, and its str */
    PyObject *last_error_class_str;
} columns;

/* Reads a Term as upb does (the last kind field wins): its kind (0 for
 * none), the varint or fixed64 of a scalar kind, the payload of the others. */
static int
read_term(span term, uint32_t *kind, uint64_t *number, span *payload)
{
    static const int8_t wire_of[12] = {-1,     WT_LEN, WT_VARINT, WT_VARINT, WT_LEN, WT_I64,
                                       WT_LEN, WT_LEN, WT_LEN,    WT_LEN,    WT_LEN, WT_LEN};
    const uint8_t *p = term.p;
    *kind = 0;
    while (p < term.end) {
        uint32_t field;
        int wire_type;
        if (!read_tag(&p, term.end, &field, &wire_type)) {
            return 0;
        }
        if (field >= 1 && field <= 11 && wire_type == wire_of[field]) {
            int ok = wire_type == WT_LEN      ? read_len(&p, term.end, payload)
                     : wire_type == WT_VARINT ? read_varint(&p, term.end, number)
                                              : read_fixed64(&p, term.end, number);
            if (!ok) {
                return 0;
            }
            *kind = field;
            continue;
        }
        if (!skip_field(&p, term.end, field, wire_type, 0)) {
            return 0;
        }
    }
    return 1;
}

static PyObject *
utf8_text(span text)
{
    return PyUnicode_DecodeUTF8((const char *)text.p, text.end - text.p, NULL);
}

/* The Python value of a stats value: scalars here, the other kinds (and a
 * Term without a kind) through term_value, which raises what from_term
 * raises. NULL with an exception set, or NULL without one to decline. */
static PyObject *
stats_value(columns *c, span value, Py_ssize_t index, PyObject *key)
{
    uint32_t kind;
    uint64_t number = 0;
    span payload = {NULL, NULL};
    if (!read_term(value, &kind, &number, &payload)) {
        return NULL;
    }
    switch (kind) {
    case 1:
        return Py_NewRef(Py_None);
    case 2:
        return PyBool_FromLong(number != 0);
    case 3:
        return PyLong_FromLongLong((int64_t)((number >> 1) ^ (~(number & 1) + 1)));
    case 5: {
        double d;
        memcpy(&d, &number, sizeof d);
        return PyFloat_FromDouble(d);
    }
    case 6: {
        PyObject *text = utf8_text(payload);
        if (text == NULL) { /* not UTF-8: upb never parses that; decline */
            PyErr_Clear();
        }
        return text;
    }
    case 7:
        return PyBytes_FromStringAndSize((const char *)payload.p, payload.end - payload.p);
    default: {
        PyObject *raw =
            PyBytes_FromStringAndSize((const char *)value.p, value.end - value.p);
        if (raw == NULL) {
            return NULL;
        }
        return PyObject_CallFunction(c->term_value, "NnO", raw, index, key);
    }
    }
}

/* The column of the string key `text` at `position` of a stats map, and the
 * key as a str: new references. */
static int
stats_column(columns *c, span text, int position, PyObject **key, PyObject **column)
{
    Py_ssize_t len = text.end - text.p;
    column_slot *slot = position < COLUMN_CACHE ? &c->slots[position] : NULL;
    if (slot != NULL && slot->column != NULL && slot->len == len &&
        memcmp(slot->p, text.p, (size_t)len) == 0) {
        *key = Py_NewRef(slot->key);
        *column = Py_NewRef(slot->column);
        return COL_OK;
    }
    PyObject *name = utf8_text(text);
    if (name == NULL) { /* not UTF-8: upb never parses that; decline */
        PyErr_Clear();
        return COL_DECLINE;
    }
    PyObject *found = PyDict_GetItemWithError(c->stats, name);
    if (found != NULL) {
        Py_INCREF(found);
    }
    else {
        if (PyErr_Occurred()) {
            Py_DECREF(name);
            return COL_ERROR;
        }
        if (c->cells > c->cell_limit - c->n) {
            Py_DECREF(name);
            return COL_LIMIT;
        }
        found = PyList_New(c->n);
        if (found == NULL || PyDict_SetItem(c->stats, name, found) < 0) {
            Py_XDECREF(found);
            Py_DECREF(name);
            return COL_ERROR;
        }
        for (Py_ssize_t i = 0; i < c->n; i++) {
            PyList_SET_ITEM(found, i, Py_NewRef(Py_None));
        }
        c->cells += c->n;
    }
    if (slot != NULL) {
        slot->p = text.p;
        slot->len = len;
        Py_XSETREF(slot->key, Py_NewRef(name));
        Py_XSETREF(slot->column, Py_NewRef(found));
    }
    *key = name;
    *column = found;
    return COL_OK;
}

static void
put(PyObject *list, Py_ssize_t index, PyObject *value)
{
    PyObject *old = PyList_GET_ITEM(list, index);
    PyList_SET_ITEM(list, index, value);
    Py_XDECREF(old);
}

/* One TermMapEntry of the stats of trial `index`, at `position` in its map. */
static int
read_stats_entry(columns *c, span entry, Py_ssize_t index, int position)
{
    const uint8_t *p = entry.p;
    uint64_t seen = 0;
    span key = {NULL, NULL}, value = {p, p}; /* an absent value is an empty Term */
    while (p < entry.end) {
        uint32_t number;
        int wire_type;
        if (!read_tag(&p, entry.end, &number, &wire_type)) {
            return COL_DECLINE;
        }
        if ((number == 1 || number == 2) && wire_type == WT_LEN) {
            if (seen & ((uint64_t)1 << number)) { /* upb would merge the two */
                return COL_DECLINE;
            }
            seen |= (uint64_t)1 << number;
            if (!read_len(&p, entry.end, number == 1 ? &key : &value)) {
                return COL_DECLINE;
            }
            continue;
        }
        if (!skip_field(&p, entry.end, number, wire_type, 0)) {
            return COL_DECLINE;
        }
    }
    uint32_t kind;
    uint64_t ignored;
    span text = {NULL, NULL};
    if (!read_term(key, &kind, &ignored, &text)) {
        return COL_DECLINE;
    }
    if (kind != 6) { /* only string keys make columns */
        return COL_OK;
    }
    PyObject *name, *column;
    int rc = stats_column(c, text, position, &name, &column);
    if (rc != COL_OK) {
        return rc;
    }
    PyObject *item = stats_value(c, value, index, name);
    Py_DECREF(name);
    if (item == NULL) {
        Py_DECREF(column);
        return PyErr_Occurred() ? COL_ERROR : COL_DECLINE;
    }
    put(column, index, item); /* a repeated key: the last one wins */
    Py_DECREF(column);
    return COL_OK;
}

static int
read_stats(columns *c, span map, Py_ssize_t index)
{
    const uint8_t *p = map.p;
    int position = 0;
    while (p < map.end) {
        uint32_t number;
        int wire_type;
        span entry;
        if (!read_tag(&p, map.end, &number, &wire_type)) {
            return COL_DECLINE;
        }
        if (number == 1 && wire_type == WT_LEN) {
            if (!read_len(&p, map.end, &entry)) {
                return COL_DECLINE;
            }
            int rc = read_stats_entry(c, entry, index, position++);
            if (rc != COL_OK) {
                return rc;
            }
            continue;
        }
        if (!skip_field(&p, map.end, number, wire_type, 0)) {
            return COL_DECLINE;
        }
    }
    return COL_OK;
}

/* Sets fixed column `column` of row `index`; COL_ERROR when `value` is NULL. */
static int
put_fixed(columns *c, int column, Py_ssize_t index, PyObject *value)
{
    if (value == NULL) {
        return COL_ERROR;
    }
    put(c->fixed[column], index, value);
    return COL_OK;
}

/* A text field: its str, or a new reference to None when absent. NULL with
 * no exception set declines (not UTF-8). */
static PyObject *
optional_text(span text, int present)
{
    if (!present) {
        return Py_NewRef(Py_None);
    }
    PyObject *result = utf8_text(text);
    if (result == NULL) {
        PyErr_Clear();
    }
    return result;
}

/* TrialLogEntry number `index`: one row of every column. */
static int
read_trial_row(columns *c, span trial, Py_ssize_t index)
{
    const uint8_t *p = trial.p;
    uint64_t seen = 0, trial_idx = 0, status = 0, duration_ms = 0, score_bits = 0;
    span candidate_id = {NULL, NULL}, error_class = {NULL, NULL}, stats = {NULL, NULL},
         ignored;
    static const int8_t wire_of[9] = {-1,     WT_VARINT, WT_LEN, WT_I64,  WT_VARINT,
                                      WT_LEN, WT_VARINT, WT_LEN, WT_LEN};
    while (p < trial.end) {
        uint32_t number;
        int wire_type;
        if (!read_tag(&p, trial.end, &number, &wire_type)) {
            return COL_DECLINE;
        }
        if (number <= 8 && wire_type == wire_of[number]) {
            if (seen & ((uint64_t)1 << number)) { /* not what upb writes: decline */
                return COL_DECLINE;
            }
            seen |= (uint64_t)1 << number;
            int ok;
            switch (number) {
            case 1:
                ok = read_varint(&p, trial.end, &trial_idx);
                break;
            case 2:
                ok = read_len(&p, trial.end, &candidate_id);
                break;
            case 3:
                ok = read_fixed64(&p, trial.end, &score_bits);
                break;
            case 4:
                ok = read_varint(&p, trial.end, &status);
                break;
            case 5:
                ok = read_len(&p, trial.end, &stats);
                break;
            case 6:
                ok = read_varint(&p, trial.end, &duration_ms);
                break;
            case 7: /* error: not a column */
                ok = read_len(&p, trial.end, &ignored);
                break;
            default:
                ok = read_len(&p, trial.end, &error_class);
                break;
            }
            if (!ok) {
                return COL_DECLINE;
            }
            continue;
        }
        if (!skip_field(&p, trial.end, number, wire_type, 0)) {
            return COL_DECLINE;
        }
    }
    int32_t status32 = (int32_t)(uint32_t)status; /* an enum is an int32 */
    if (status32 != 1 && status32 != 2) {
        return COL_DECLINE;
    }
    PyObject *text = optional_text(candidate_id, HAS(seen, 2));
    if (text == NULL) {
        return PyErr_Occurred() ? COL_ERROR : COL_DECLINE;
    }
    put(c->fixed[1], index, text);
    if (HAS(seen, 8)) {
        span last = c->last_error_class;
        Py_ssize_t len = error_class.end - error_class.p;
        if (c->last_error_class_str == NULL || last.end - last.p != len ||
            memcmp(last.p, error_class.p, (size_t)len) != 0) {
            text = optional_text(error_class, 1);
            if (text == NULL) {
                return PyErr_Occurred() ? COL_ERROR : COL_DECLINE;
            }
            Py_XSETREF(c->last_error_class_str, text);
            c->last_error_class = error_class;
        }
        put(c->fixed[5], index, Py_NewRef(c->last_error_class_str));
    }
    else {
        put(c->fixed[5], index, Py_NewRef(Py_None));
    }
    double score;
    memcpy(&score, &score_bits, sizeof score);
    put(c->fixed[3], index, Py_NewRef(status32 == 1 ? str_ok : str_error));
    if (put_fixed(c, 0, index, PyLong_FromUnsignedLongLong(trial_idx)) != COL_OK ||
        put_fixed(c, 2, index,
                  HAS(seen, 3) ? PyFloat_FromDouble(score) : Py_NewRef(Py_None)) != COL_OK ||
        put_fixed(c, 4, index, PyLong_FromUnsignedLongLong(duration_ms)) != COL_OK) {
        return COL_ERROR;
    }
    return HAS(seen, 5) ? read_stats(c, stats, index) : COL_OK;
}

/* The trial log's entries in Progress bytes: counts them when `c` is NULL,
 * reads them into `c` otherwise. */
static int
walk_trial_log(span progress, columns *c, Py_ssize_t *count)
{
    const uint8_t *p = progress.p;
    Py_ssize_t index = 0;
    while (p < progress.end) {
        uint32_t number;
        int wire_type;
        span trial;
        if (!read_tag(&p, progress.end, &number, &wire_type)) {
            return COL_DECLINE;
        }
        if (number == 1 && wire_type == WT_LEN) {
            if (!read_len(&p, progress.end, &trial)) {
                return COL_DECLINE;
            }
            if (c != NULL) {
                if (index >= c->n) {
                    return COL_DECLINE;
                }
                int rc = read_trial_row(c, trial, index);
                if (rc != COL_OK) {
                    return rc;
                }
            }
            index++;
            continue;
        }
        if (!skip_field(&p, progress.end, number, wire_type, 0)) {
            return COL_DECLINE;
        }
    }
    *count = index;
    return COL_OK;
}

static PyObject *
accel_trial_columns(PyObject *module, PyObject *args)
{
    (void)module;
    Py_buffer view;
    columns c;
    memset(&c, 0, sizeof c);
    if (!PyArg_ParseTuple(args, "y*nO:trial_columns", &view, &c.cell_limit, &c.term_value)) {
        return NULL;
    }
    if (str_ok == NULL) {
        str_ok = PyUnicode_InternFromString("ok");
        str_error = PyUnicode_InternFromString("error");
        if (str_ok == NULL || str_error == NULL) {
            Py_CLEAR(str_ok);
            Py_CLEAR(str_error);
            PyBuffer_Release(&view);
            return NULL;
        }
    }
    span progress = {(const uint8_t *)view.buf, (const uint8_t *)view.buf + view.len};
    PyObject *result = NULL;
    int rc = walk_trial_log(progress, NULL, &c.n);
    if (rc == COL_OK) {
        c.stats = PyDict_New();
        rc = c.stats == NULL ? COL_ERROR : COL_OK;
        for (int k = 0; k < 6 && rc == COL_OK; k++) {
            c.fixed[k] = PyList_New(c.n); /* items NULL until read */
            rc = c.fixed[k] == NULL ? COL_ERROR : COL_OK;
        }
    }
    Py_ssize_t read = 0;
    if (rc == COL_OK) {
        rc = walk_trial_log(progress, &c, &read);
    }
    if (rc == COL_OK) {
        result = Py_BuildValue("(OOOOOOO)", c.fixed[0], c.fixed[1], c.fixed[2], c.fixed[3],
                               c.fixed[4], c.fixed[5], c.stats);
    }
    else if (rc == COL_DECLINE) {
        result = Py_NewRef(Py_None);
    }
    else if (rc == COL_LIMIT) {
        result = Py_NewRef(Py_False);
    }
    for (int k = 0; k < 6; k++) {
        Py_XDECREF(c.fixed[k]);
    }
    Py_XDECREF(c.stats);
    for (int k = 0; k < COLUMN_CACHE; k++) {
        Py_XDECREF(c.slots[k].key);
        Py_XDECREF(c.slots[k].column);
    }
    Py_XDECREF(c.last_error_class_str);
    PyBuffer_Release(&view);
    return result;
}

static PyObject *
accel_set_atom_type(PyObject *module, PyObject *type)
{
    (void)module;
    if (!PyType_Check(type)) {
        PyErr_SetString(PyExc_TypeError, "set_atom_type takes a class");
        return NULL;
    }
    Py_XSETREF(atom_type, Py_NewRef(type));
    Py_RETURN_NONE;
}

/* ======================================================================== */
/* The byte grammar of FORMAT.md §2: CRC-32C, strict scan, weight           */
/* ======================================================================== */

/*
 * grammar.py is the reference; this is the same reading, rule for rule, with
 * the same paths and details. The field table is not written here: grammar.py
 * builds it from the generated descriptors and hands it over once, on import,
 * through set_grammar_table. The scan itself touches no Python object, so it
 * runs without the GIL.
 */

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define CRC_HARDWARE 1
#include <immintrin.h>

/* The same CRC with SSE4.2's crc32 instruction (the same polynomial), used when
 * the processor has it (crc_init asks). */
__attribute__((target("sse4.2"))) static uint32_t
crc32c_sse42(uint32_t crc, const uint8_t *p, size_t n)
{
#if defined(__x86_64__)
    uint64_t wide = crc;
    while (n >= 8) {
        uint64_t chunk;
        memcpy(&chunk, p, 8);
        wide = _mm_crc32_u64(wide, chunk);
        p += 8;
        n -= 8;
    }
    crc = (uint32_t)wide;
#endif
    while (n--) {
        crc = _mm_crc32_u8(crc, *p++);
    }
    return crc;
}
#endif

static int crc_hardware = 0; /* crc32c_sse42 is usable */

static uint32_t crc_table[8][256];

static void
crc_init(void)
{
#ifdef CRC_HARDWARE
    __builtin_cpu_init();
    crc_hardware = __builtin_cpu_supports("sse4.2") != 0;
#endif
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) {
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        }
        crc_table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = crc_table[0][n];
        for (int t = 1; t < 8; t++) {
            c = crc_table[0][c & 0xFF] ^ (c >> 8);
            crc_table[t][n] = c;
        }
    }
}

/* CRC-32C (Castagnoli), slice by 8, in portable C: the state before the final XOR. */
static uint32_t
crc32c_table(uint32_t crc, const uint8_t *p, size_t n)
{
    while (n >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        uint32_t hi =
            (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        crc = crc_table[7][lo & 0xFF] ^ crc_table[6][(lo >> 8) & 0xFF] ^
              crc_table[5][(lo >> 16) & 0xFF] ^ crc_table[4][lo >> 24] ^
              crc_table[3][hi & 0xFF] ^ crc_table[2][(hi >> 8) & 0xFF] ^
              crc_table[1][(hi >> 16) & 0xFF] ^ crc_table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) {
        crc = crc_table[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    }
    return crc;
}


static uint32_t
crc32c_of(const uint8_t *p, size_t n)
{
#ifdef CRC_HARDWARE
    if (crc_hardware) {
        return crc32c_sse42(0xFFFFFFFFu, p, n) ^ 0xFFFFFFFFu;
    }
#endif
    return crc32c_table(0xFFFFFFFFu, p, n) ^ 0xFFFFFFFFu;
}

/* Well-formed UTF-8 (RFC 3629), as Python's strict decoder reads it. */
static int
utf8_valid(const uint8_t *s, const uint8_t *e)
{
    while (s < e) {
        while (e - s >= 8) { /* ASCII, 8 bytes at a time */
            uint64_t chunk;
            memcpy(&chunk, s, 8);
            if (chunk & 0x8080808080808080ull) {
                break;
            }
            s += 8;
        }
        if (s >= e) {
            break;
        }
        uint8_t c = *s;
        if (c < 0x80) {
            s++;
            continue;
        }
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        }
        else if (c == 0xE0) {
            need = 2;
            lo = 0xA0;
        }
        else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
            need = 2;
        }
        else if (c == 0xED) {
            need = 2;
            hi = 0x9F;
        }
        else if (c == 0xF0) {
            need = 3;
            lo = 0x90;
        }
        else if (c >= 0xF1 && c <= 0xF3) {
            need = 3;
        }
        else if (c == 0xF4) {
            need = 3;
            hi = 0x8F;
        }
        else {
            return 0;
        }
        if ((size_t)(e - s) <= need || s[1] < lo || s[1] > hi) {
            return 0;
        }
        for (size_t k = 2; k <= need; k++) {
            if (s[k] < 0x80 || s[k] > 0xBF) {
                return 0;
            }
        }
        s += need + 1;
    }
    return 1;
}

/* Value kinds of known fields: grammar.py's _K_* constants. */
enum { GK_BOOL, GK_UINT32, GK_INT32, GK_INT64, GK_FIXED, GK_STRING, GK_BYTES, GK_MESSAGE };
/* Message roles: grammar.py's _flat_table. */
enum { ROLE_OTHER = 0, ROLE_TERM = 1, ROLE_CONTAINER = 2 };

#define TRAILER_NUMBER 536870911u
#define TRAILER_SIZE 9
static const uint8_t TRAILER_TAG[5] = {0xFD, 0xFF, 0xFF, 0xFF, 0x0F};

typedef struct {
    uint32_t number;
    int kind;
    int wire_type;
    int presence;
    int repeated;
    int child; /* index of the message type, or -1 */
    char *name;
} gfield;

typedef struct {
    int role;
    uint64_t weight;
    uint32_t max_number;
    int *slot; /* field index by number, -1 when unknown; max_number + 1 long */
    gfield *fields;
    Py_ssize_t nfields;
} gmessage;

static gmessage *g_messages = NULL;
static Py_ssize_t g_nmessages = 0;
static int g_max_term_depth = MAX_TERM_DEPTH;
static uint64_t g_max_bytes = 268435456u;
static uint64_t g_weight_factor = 7u;
static uint64_t g_weight_base = 50331648u;

/* A path: the field that holds a message (NULL for the top level). */
typedef struct gpath {
    const struct gpath *parent;
    const char *name;
    int64_t index; /* -1: not a repeated field */
} gpath;

#define PATH_CAP 8192
#define DETAIL_CAP (PATH_CAP + 160)

typedef struct {
    const uint8_t *base;
    const char *rule;
    char path[PATH_CAP];
    char detail[DETAIL_CAP];
} gctx;

static size_t
render_path(const gpath *node, char *out, size_t cap)
{
    if (node == NULL) {
        return (size_t)snprintf(out, cap, "<input>");
    }
    size_t n = 0;
    if (node->parent != NULL) {
        n = render_path(node->parent, out, cap);
        if (n + 1 < cap) {
            out[n++] = '.';
            out[n] = '\0';
        }
    }
    if (n >= cap) {
        return n;
    }
    int w = node->index < 0
                ? snprintf(out + n, cap - n, "%s", node->name)
                : snprintf(out + n, cap - n, "%s[%lld]", node->name, (long long)node->index);
    return n + (w < 0 ? 0 : (size_t)w);
}

/* Record a refusal at `at`; the detail is `fmt` with `where`'s path first when given. */
static int
gfail(gctx *c, const char *rule, const gpath *at, const char *detail)
{
    c->rule = rule;
    render_path(at, c->path, sizeof c->path);
    snprintf(c->detail, sizeof c->detail, "%s", detail);
    return -1;
}

static int
gfail_where(gctx *c, const char *rule, const gpath *at, const gpath *where, const char *suffix)
{
    char where_text[PATH_CAP];
    render_path(where, where_text, sizeof where_text);
    c->rule = rule;
    render_path(at, c->path, sizeof c->path);
    snprintf(c->detail, sizeof c->detail, "%s%s", where_text, suffix);
    return -1;
}

/* grammar.py's _Scanner.varint: truncation names `at`, other faults `where`. */
static int gvarint_long(gctx *c, const uint8_t **pp, const uint8_t *end, const gpath *at,
                        const gpath *where, uint64_t *out);

static inline int
gvarint(gctx *c, const uint8_t **pp, const uint8_t *end, const gpath *at, const gpath *where,
        uint64_t *out)
{
    const uint8_t *p = *pp;
    if (p < end && *p < 0x80) { /* one byte: always minimal */
        *out = *p;
        *pp = p + 1;
        return 0;
    }
    return gvarint_long(c, pp, end, at, where, out);
}

static int
gvarint_long(gctx *c, const uint8_t **pp, const uint8_t *end, const gpath *at,
             const gpath *where, uint64_t *out)
{
    const uint8_t *p = *pp;
    uint64_t value = 0;
    for (int i = 0; i < 10; i++) {
        if (p >= end) {
            return gfail_where(c, "wire.truncated", at, where, " cut short");
        }
        uint8_t b = *p++;
        if (i == 9 && b > 1) {
            return gfail(c, "wire.varint", where, "varint longer than 64 bits");
        }
        value |= (uint64_t)(b & 0x7F) << (7 * i);
        if (b < 0x80) {
            if (i > 0 && b == 0) {
                return gfail(c, "wire.varint", where, "varint not minimal");
            }
            *pp = p;
            *out = value;
            return 0;
        }
    }
    return -1; /* unreachable */
}

static int
gcheck_scalar(gctx *c, const gfield *field, uint64_t value, const gpath *fpath)
{
    char text[64];
    if (field->kind == GK_BOOL && value > 1) {
        snprintf(text, sizeof text, "bool %llu", (unsigned long long)value);
        return gfail(c, "wire.range", fpath, text);
    }
    if (field->kind == GK_UINT32 && value >= ((uint64_t)1 << 32)) {
        snprintf(text, sizeof text, "%llu over uint32", (unsigned long long)value);
        return gfail(c, "wire.range", fpath, text);
    }
    if (field->kind == GK_INT32 && value >= ((uint64_t)1 << 31) &&
        value < (uint64_t)0 - ((uint64_t)1 << 31)) {
        snprintf(text, sizeof text, "%llu outside int32", (unsigned long long)value);
        return gfail(c, "wire.range", fpath, text);
    }
    if (value == 0 && !field->presence) {
        return gfail(c, "wire.default", fpath, "default value written");
    }
    return 0;
}

static int
child_depth(int parent_role, int depth, int child_role)
{
    if (parent_role == ROLE_TERM) {
        return depth + 1;
    }
    if (parent_role == ROLE_CONTAINER) {
        return depth;
    }
    if (child_role == ROLE_TERM) {
        return 1;
    }
    return child_role == ROLE_CONTAINER ? 2 : 0;
}

/* grammar.py's _Scanner.message: 0 with *weight added to, or -1 with c filled. */
static int
gscan(gctx *c, const gmessage *schema, const uint8_t *p, const uint8_t *end, const gpath *path,
      int depth, uint64_t *weight)
{
    uint32_t previous = 0;
    int previous_wire = -1;
    int64_t run = 0; /* elements of `previous` so far */
    int kinds = 0;
    char text[96];
    while (p < end) {
        uint64_t tag;
        if (gvarint(c, &p, end, path, path, &tag) < 0) {
            return -1;
        }
        if (tag >= ((uint64_t)1 << 32)) {
            return gfail(c, "wire.varint", path, "tag of 2^32 or more");
        }
        uint32_t number = (uint32_t)(tag >> 3);
        int wire_type = (int)(tag & 7);
        if (number == 0 || number == TRAILER_NUMBER) {
            snprintf(text, sizeof text, "field number %u", number);
            return gfail(c, "wire.tag", path, text);
        }
        if (wire_type != WT_VARINT && wire_type != WT_I64 && wire_type != WT_LEN &&
            wire_type != WT_I32) {
            snprintf(text, sizeof text, "wire type %d of field %u", wire_type, number);
            return gfail(c, "wire.tag", path, text);
        }
        const gfield *field = NULL;
        if (number <= schema->max_number && schema->slot[number] >= 0) {
            field = &schema->fields[schema->slot[number]];
        }
        if (number < previous ||
            (number == previous &&
             !(field != NULL ? field->repeated : wire_type == previous_wire))) {
            snprintf(text, sizeof text, "field %u after field %u", number, previous);
            return gfail(c, "wire.order", path, text);
        }
        run = number == previous ? run + 1 : 0;
        previous = number;
        previous_wire = wire_type;
        if (field == NULL) {
            uint64_t length;
            if (wire_type == WT_VARINT) {
                if (gvarint(c, &p, end, path, path, &length) < 0) {
                    return -1;
                }
                continue;
            }
            if (wire_type == WT_LEN) {
                if (gvarint(c, &p, end, path, path, &length) < 0) {
                    return -1;
                }
            }
            else {
                length = wire_type == WT_I64 ? 8 : 4;
            }
            if (length > (uint64_t)(end - p)) {
                return gfail(c, "wire.truncated", path, "an unknown field cut short");
            }
            p += length;
            continue;
        }
        if (wire_type != field->wire_type) {
            snprintf(text, sizeof text, "field %u with wire type %d", number, wire_type);
            return gfail(c, "wire.tag", path, text);
        }
        if (schema->role == ROLE_TERM && ++kinds > 1) {
            return gfail(c, "wire.oneof", path, "a Term with more than one kind");
        }
        gpath fpath = {path, field->name, field->repeated ? run : -1};
        if (wire_type == WT_VARINT) {
            uint64_t value;
            if (gvarint(c, &p, end, path, &fpath, &value) < 0 ||
                gcheck_scalar(c, field, value, &fpath) < 0) {
                return -1;
            }
            continue;
        }
        if (wire_type != WT_LEN) {
            size_t size = wire_type == WT_I64 ? 8 : 4;
            if ((size_t)(end - p) < size) {
                return gfail_where(c, "wire.truncated", path, &fpath, " cut short");
            }
            p += size;
            continue;
        }
        uint64_t length;
        if (gvarint(c, &p, end, path, &fpath, &length) < 0) {
            return -1;
        }
        if (length > (uint64_t)(end - p)) {
            return gfail_where(c, "wire.truncated", path, &fpath, " longer than its message");
        }
        const uint8_t *stop = p + length;
        if (field->child < 0) {
            if (field->kind == GK_STRING && !utf8_valid(p, stop)) {
                return gfail(c, "wire.utf8", &fpath, "not UTF-8");
            }
            if (length == 0 && !field->presence) {
                return gfail(c, "wire.default", &fpath, "default value written");
            }
        }
        else {
            const gmessage *child = &g_messages[field->child];
            int inner = child_depth(schema->role, depth, child->role);
            if (child->role == ROLE_TERM && inner > g_max_term_depth) {
                snprintf(text, sizeof text, "Term nested deeper than %d", g_max_term_depth);
                return gfail(c, "term.depth", &fpath, text);
            }
            *weight += child->weight;
            if (gscan(c, child, p, stop, &fpath, inner, weight) < 0) {
                return -1;
            }
        }
        p = stop;
    }
    return 0;
}

/* §2.2 over body, then the weight limit for `size` input bytes: 0 or -1. */
static int
gscan_body(gctx *c, const uint8_t *body, size_t length, uint64_t size, Py_ssize_t root)
{
    uint64_t weight = 0;
    if (gscan(c, &g_messages[root], body, body + length, NULL, 1, &weight) < 0) {
        return -1;
    }
    uint64_t limit = g_weight_factor * size + g_weight_base;
    if (weight > limit) {
        char text[160];
        snprintf(text, sizeof text, "weight %llu over the limit of %llu for %llu bytes",
                 (unsigned long long)weight, (unsigned long long)limit,
                 (unsigned long long)size);
        return gfail(c, "input.weight", NULL, text);
    }
    return 0;
}

/* The whole of grammar.check: 0 (the body is data[:len - 9]) or -1. */
static int
gcheck_input(gctx *c, const uint8_t *data, size_t size, Py_ssize_t root)
{
    char text[128];
    if ((uint64_t)size > g_max_bytes) {
        snprintf(text, sizeof text, "%llu bytes, over the limit of %llu",
                 (unsigned long long)size, (unsigned long long)g_max_bytes);
        return gfail(c, "input.too_large", NULL, text);
    }
    if (size < TRAILER_SIZE || memcmp(data + size - 9, TRAILER_TAG, 5) != 0) {
        return gfail(c, "input.trailer", NULL,
                     "no checksum trailer at the end (cut or not a checkpoint)");
    }
    const uint8_t *t = data + size - 4;
    uint32_t expected =
        (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
    if (crc32c_of(data, size - 9) != expected) {
        return gfail(c, "input.checksum", NULL, "the checksum does not match the bytes");
    }
    return gscan_body(c, data, size - 9, (uint64_t)size, root);
}

static PyObject *
grammar_refusal(const gctx *c)
{
    return Py_BuildValue("(sss)", c->rule, c->path, c->detail);
}

static int
grammar_ready(void)
{
    if (g_messages == NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "the grammar table is not set (import dsxir.optimizer_session.grammar)");
        return 0;
    }
    return 1;
}

/* The message the table gives at `root`, or -1 with TypeError/IndexError set. */
static int
grammar_root(Py_ssize_t root)
{
    if (root < 0 || root >= g_nmessages) {
        PyErr_SetString(PyExc_IndexError, "no message at that index of the grammar table");
        return -1;
    }
    return 0;
}

static PyObject *
accel_grammar_check(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *arg;
    Py_ssize_t root = 0;
    if (!grammar_ready() || !PyArg_ParseTuple(args, "O|n:grammar_check", &arg, &root) ||
        grammar_root(root) < 0) {
        return NULL;
    }
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "grammar_check takes bytes");
        return NULL;
    }
    const uint8_t *data = (const uint8_t *)PyBytes_AS_STRING(arg);
    size_t size = (size_t)PyBytes_GET_SIZE(arg);
    gctx *c = PyMem_RawMalloc(sizeof *c);
    if (c == NULL) {
        return PyErr_NoMemory();
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS;
    rc = gcheck_input(c, data, size, root);
    Py_END_ALLOW_THREADS;
    PyObject *result = rc == 0 ? PyBytes_FromStringAndSize((const char *)data, (Py_ssize_t)size - 9)
                               : grammar_refusal(c);
    PyMem_RawFree(c);
    return result;
}

static PyObject *
accel_grammar_scan(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *body;
    unsigned long long size;
    Py_ssize_t root = 0;
    if (!grammar_ready() || !PyArg_ParseTuple(args, "OK|n:grammar_scan", &body, &size, &root) ||
        grammar_root(root) < 0) {
        return NULL;
    }
    if (!PyBytes_Check(body)) {
        PyErr_SetString(PyExc_TypeError, "grammar_scan takes bytes");
        return NULL;
    }
    const uint8_t *data = (const uint8_t *)PyBytes_AS_STRING(body);
    size_t length = (size_t)PyBytes_GET_SIZE(body);
    gctx *c = PyMem_RawMalloc(sizeof *c);
    if (c == NULL) {
        return PyErr_NoMemory();
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS;
    rc = gscan_body(c, data, length, (uint64_t)size, root);
    Py_END_ALLOW_THREADS;
    PyObject *result = rc == 0 ? Py_NewRef(Py_None) : grammar_refusal(c);
    PyMem_RawFree(c);
    return result;
}

/* The bytes of a checkpoint: `body` then its trailer (FORMAT.md §2.1), or NULL. */
static PyObject *
sealed_bytes(const uint8_t *body, size_t length)
{
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)length + TRAILER_SIZE);
    if (out == NULL) {
        return NULL;
    }
    uint8_t *q = (uint8_t *)PyBytes_AS_STRING(out);
    uint32_t crc;
    Py_BEGIN_ALLOW_THREADS;
    memcpy(q, body, length);
    crc = crc32c_of(q, length);
    Py_END_ALLOW_THREADS;
    memcpy(q + length, TRAILER_TAG, 5);
    for (int i = 0; i < 4; i++) {
        q[length + 5 + i] = (uint8_t)(crc >> (8 * i));
    }
    return out;
}

static PyObject *
accel_seal(PyObject *module, PyObject *arg)
{
    (void)module;
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "seal takes bytes");
        return NULL;
    }
    return sealed_bytes((const uint8_t *)PyBytes_AS_STRING(arg), (size_t)PyBytes_GET_SIZE(arg));
}

/* decode's first steps in one call: grammar_check of a Checkpoint (root 0),
 * then check_canonical of its body, which the grammar has made canonical. */
static PyObject *
accel_read_checkpoint(PyObject *module, PyObject *arg)
{
    (void)module;
    if (!grammar_ready()) {
        return NULL;
    }
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "read_checkpoint takes bytes");
        return NULL;
    }
    const uint8_t *data = (const uint8_t *)PyBytes_AS_STRING(arg);
    size_t size = (size_t)PyBytes_GET_SIZE(arg);
    gctx *c = PyMem_RawMalloc(sizeof *c);
    if (c == NULL) {
        return PyErr_NoMemory();
    }
    int rc, valid = 0;
    Py_BEGIN_ALLOW_THREADS;
    rc = gcheck_input(c, data, size, 0);
    if (rc == 0) {
        walk w = {NULL, 0, 1, 0, 0};
        span body = {data, data + size - TRAILER_SIZE};
        valid = check_checkpoint(body, &w);
    }
    Py_END_ALLOW_THREADS;
    PyObject *result = rc == 0 ? PyBool_FromLong(valid) : grammar_refusal(c);
    PyMem_RawFree(c);
    return result;
}

/* What encode writes when nothing is wrong, in one pass over the serialization
 * of a message this process holds: check_screened, no unknown field anywhere
 * (then the protobuf runtime wrote every byte, by the grammar), the Term
 * depth (check_term), the size and the weight limits; then the sealed bytes.
 * None when any of it does not hold: the caller takes the reference path. */
static PyObject *
accel_seal_screened(PyObject *module, PyObject *arg)
{
    (void)module;
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "seal_screened takes bytes");
        return NULL;
    }
    const uint8_t *body = (const uint8_t *)PyBytes_AS_STRING(arg);
    size_t length = (size_t)PyBytes_GET_SIZE(arg);
    uint64_t size = (uint64_t)length + TRAILER_SIZE;
    if (g_messages == NULL || !walk_weighed || size > g_max_bytes) {
        Py_RETURN_NONE;
    }
    screen_ctx screen;
    memset(screen.len, 0, sizeof screen.len);
    walk w = {&screen, 0, 1, 0, 0};
    span data = {body, body + length};
    if (!check_checkpoint(data, &w) || w.unknown ||
        w.weight > g_weight_factor * size + g_weight_base) {
        Py_RETURN_NONE;
    }
    return sealed_bytes(body, length);
}

static PyObject *
accel_crc32c(PyObject *module, PyObject *arg)
{
    (void)module;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    uint32_t crc;
    Py_BEGIN_ALLOW_THREADS;
    crc = crc32c_of((const uint8_t *)view.buf, (size_t)view.len);
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(crc);
}

static void
free_table(gmessage *messages, Py_ssize_t n)
{
    if (messages == NULL) {
        return;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        for (Py_ssize_t k = 0; k < messages[i].nfields; k++) {
            PyMem_RawFree(messages[i].fields[k].name);
        }
        PyMem_RawFree(messages[i].fields);
        PyMem_RawFree(messages[i].slot);
    }
    PyMem_RawFree(messages);
}

static int
read_field(PyObject *item, Py_ssize_t nmessages, gfield *out)
{
    unsigned long number;
    const char *name;
    int kind, wire_type, presence, repeated, child;
    if (!PyArg_ParseTuple(item, "ksiippi", &number, &name, &kind, &wire_type, &presence,
                          &repeated, &child)) {
        return 0;
    }
    if (number == 0 || number >= TRAILER_NUMBER || kind < GK_BOOL || kind > GK_MESSAGE ||
        child < -1 || child >= nmessages || (kind == GK_MESSAGE) != (child >= 0) ||
        (wire_type != WT_VARINT && wire_type != WT_I64 && wire_type != WT_LEN)) {
        PyErr_SetString(PyExc_ValueError, "set_grammar_table: a field out of range");
        return 0;
    }
    size_t len = strlen(name);
    out->name = PyMem_RawMalloc(len + 1);
    if (out->name == NULL) {
        PyErr_NoMemory();
        return 0;
    }
    memcpy(out->name, name, len + 1);
    out->number = (uint32_t)number;
    out->kind = kind;
    out->wire_type = wire_type;
    out->presence = presence;
    out->repeated = repeated;
    out->child = child;
    return 1;
}

/* The message type of field `number` of message `m`, or -1. */
static int
child_of(const gmessage *messages, int m, uint32_t number)
{
    if (m < 0 || number > messages[m].max_number || messages[m].slot[number] < 0) {
        return -1;
    }
    return messages[m].fields[messages[m].slot[number]].child;
}

/* The weights of the types check_checkpoint walks, found in the table by the
 * fields that hold them; walk_weighed stays 0 when the table is not shaped as
 * the walk reads it (seal_screened then always declines). */
static void
weigh_walk(const gmessage *messages, Py_ssize_t n)
{
    walk_weighed = 0;
    int types[W_COUNT];
    types[W_OPTION] = child_of(messages, 0, 4);
    types[W_TIMESTAMP] = child_of(messages, 0, 7);
    types[W_PROGRESS] = child_of(messages, 0, 9);
    types[W_MAP] = child_of(messages, 0, 10);
    types[W_SAMPLER] = child_of(messages, 0, 12);
    types[W_TERM] = child_of(messages, 0, 14);
    types[W_TRIAL] = child_of(messages, types[W_PROGRESS], 1);
    types[W_NULL] = child_of(messages, types[W_TERM], 1);
    types[W_LIST] = child_of(messages, types[W_TERM], 9);
    types[W_ENTRY] = child_of(messages, types[W_MAP], 1);
    for (int t = 0; t < W_COUNT; t++) {
        if (types[t] < 0 || types[t] >= n) {
            return;
        }
    }
    int term = types[W_TERM], map = types[W_MAP], list = types[W_LIST];
    int same = child_of(messages, 0, 8) == types[W_TIMESTAMP] &&
               child_of(messages, types[W_PROGRESS], 7) == types[W_TIMESTAMP] &&
               child_of(messages, types[W_OPTION], 2) == term &&
               child_of(messages, term, 10) == list && child_of(messages, term, 11) == map &&
               child_of(messages, list, 1) == term &&
               child_of(messages, types[W_ENTRY], 1) == term &&
               child_of(messages, types[W_ENTRY], 2) == term &&
               child_of(messages, types[W_TRIAL], 5) == map &&
               child_of(messages, types[W_TRIAL], 7) == map &&
               messages[types[W_NULL]].nfields == 0 && messages[term].role == ROLE_TERM;
    if (!same) {
        return;
    }
    for (int t = 0; t < W_COUNT; t++) {
        walk_weight[t] = messages[types[t]].weight;
    }
    walk_weighed = 1;
}

static PyObject *
accel_set_grammar_table(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *table;
    int max_depth;
    unsigned long long max_bytes, weight_factor, weight_base;
    if (!PyArg_ParseTuple(args, "O!iKKK:set_grammar_table", &PyList_Type, &table, &max_depth,
                          &max_bytes, &weight_factor, &weight_base)) {
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(table);
    if (n < 1) {
        PyErr_SetString(PyExc_ValueError, "set_grammar_table: no messages");
        return NULL;
    }
    gmessage *messages = PyMem_RawCalloc((size_t)n, sizeof *messages);
    if (messages == NULL) {
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *fields;
        int role;
        unsigned long long weight;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(table, i), "iKO!", &role, &weight, &PyTuple_Type,
                              &fields)) {
            goto fail;
        }
        gmessage *m = &messages[i];
        m->role = role;
        m->weight = weight;
        m->nfields = PyTuple_GET_SIZE(fields);
        m->fields = PyMem_RawCalloc((size_t)m->nfields + 1, sizeof *m->fields);
        if (m->fields == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
        for (Py_ssize_t k = 0; k < m->nfields; k++) {
            if (!read_field(PyTuple_GET_ITEM(fields, k), n, &m->fields[k])) {
                m->nfields = k;
                goto fail;
            }
            if (m->fields[k].number > m->max_number) {
                m->max_number = m->fields[k].number;
            }
        }
        if (m->max_number > 65535) {
            PyErr_SetString(PyExc_ValueError, "set_grammar_table: field number over 65535");
            goto fail;
        }
        m->slot = PyMem_RawMalloc(((size_t)m->max_number + 1) * sizeof *m->slot);
        if (m->slot == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
        for (uint32_t k = 0; k <= m->max_number; k++) {
            m->slot[k] = -1;
        }
        for (Py_ssize_t k = 0; k < m->nfields; k++) {
            m->slot[m->fields[k].number] = (int)k;
        }
    }
    /* A table set before (a reload of grammar.py) is left allocated: a scan
     * running without the GIL in another thread may still be reading it. */
    weigh_walk(messages, n);
    g_messages = messages;
    g_nmessages = n;
    g_max_term_depth = max_depth;
    g_max_bytes = max_bytes;
    g_weight_factor = weight_factor;
    g_weight_base = weight_base;
    Py_RETURN_NONE;
fail:
    free_table(messages, n);
    return NULL;
}

static PyMethodDef accel_methods[] = {
    {"grammar_check", accel_grammar_check, METH_VARARGS,
     "grammar_check(data, root=0, /)\n--\n\n"
     "grammar.check in C: the body of bytes that keep FORMAT.md section 2, or\n"
     "the tuple (rule, path, detail) of the first broken rule."},
    {"grammar_scan", accel_grammar_scan, METH_VARARGS,
     "grammar_scan(body, size, root=0, /)\n--\n\n"
     "None when a body keeps the grammar of section 2.2 and the weight limit\n"
     "for an input of size bytes, else (rule, path, detail)."},
    {"crc32c", accel_crc32c, METH_O,
     "crc32c(data, /)\n--\n\nThe CRC-32C (Castagnoli) of bytes."},
    {"seal", accel_seal, METH_O,
     "seal(body, /)\n--\n\nbody followed by its trailer (the CRC-32C); no check."},
    {"read_checkpoint", accel_read_checkpoint, METH_O,
     "read_checkpoint(data, /)\n--\n\n"
     "grammar_check(data) of a Checkpoint, then check_canonical of its body:\n"
     "(rule, path, detail) when the grammar refuses, else whether the body\n"
     "keeps every rule validate.check enforces."},
    {"seal_screened", accel_seal_screened, METH_O,
     "seal_screened(body, /)\n--\n\n"
     "The sealed bytes of the serialization `body` of a Checkpoint held in\n"
     "memory when check_screened(body) holds, no field is unknown and the size\n"
     "and weight limits hold; None otherwise."},
    {"set_grammar_table", accel_set_grammar_table, METH_VARARGS,
     "set_grammar_table(table, max_term_depth, max_bytes, weight_factor, weight_base, /)\n--\n\n"
     "The field table of grammar.py (_flat_table) and its limits; set on import."},
    {"check_canonical", accel_check_canonical, METH_O,
     "check_canonical(data, /)\n--\n\n"
     "True when the deterministic serialization `data` of a Checkpoint keeps\n"
     "every rule validate.check enforces; False otherwise (never raises on\n"
     "bytes)."},
    {"check_trials", accel_check_trials, METH_VARARGS,
     "check_trials(progress, start, /)\n--\n\n"
     "The trial entries of Progress bytes numbered from start: (count, ok,\n"
     "errors) when every entry keeps the rules validate.check enforces on it,\n"
     "else None (never raises on bytes)."},
    {"check_screened", accel_check_screened, METH_O,
     "check_screened(data, /)\n--\n\n"
     "check_canonical(data), and no credential found by the screen of\n"
     "FORMAT.md section 10 (False on a finding: Python names or redacts it)."},
    {"screen_head", accel_screen_head, METH_O,
     "screen_head(data, /)\n--\n\n"
     "True when the head of a delta (Checkpoint bytes that may lack required\n"
     "fields and start their trial log anywhere) holds no credential and its\n"
     "Terms are valid; False: the Python walk of the screen decides."},
    {"screen_term", accel_screen_term, METH_O,
     "screen_term(data, /)\n--\n\n"
     "True when canonical Term bytes are valid and hold no credential."},
    {"screen_term_map", accel_screen_term_map, METH_O,
     "screen_term_map(data, /)\n--\n\n"
     "True when canonical TermMap bytes (stats, error, artifact) are valid and\n"
     "hold no credential."},
    {"screen_text", accel_screen_text, METH_O,
     "screen_text(text, /)\n--\n\n"
     "True when a str holds no secret of the value rule."},
    {"set_text_screen", accel_set_text_screen, METH_O,
     "set_text_screen(judge, /)\n--\n\n"
     "The function that says whether a text holds a secret (has_secret)."},
    {"term_bytes", accel_term_bytes, METH_O,
     "term_bytes(value, /)\n--\n\n"
     "The canonical Term bytes of a value of the exact built-in types, or None\n"
     "when the pure-Python encoder must handle it."},
    {"map_body", accel_map_body, METH_O,
     "map_body(value, /)\n--\n\n"
     "The canonical TermMap bytes of a dict, or None."},
    {"frame_terms", accel_frame_terms, METH_O,
     "frame_terms(examples, /)\n--\n\n"
     "For a list or tuple: the concatenation of uint64_be(len(t)) + t over the\n"
     "canonical Term bytes t of each item, or None."},
    {"trial_columns", accel_trial_columns, METH_VARARGS,
     "trial_columns(progress, cell_limit, term_value, /)\n--\n\n"
     "The trial log of Progress bytes as columns: a tuple of the lists\n"
     "trial_idx, candidate_id, score, status, duration_ms, error_class and a\n"
     "dict of stats columns by key; False when the stats columns would hold\n"
     "more than cell_limit cells; None when the pure-Python reader must answer."},
    {"set_atom_type", accel_set_atom_type, METH_O,
     "set_atom_type(cls, /)\n--\n\nThe class whose instances are Term atoms."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef accel_module = {
    PyModuleDef_HEAD_INIT,
    "dsxir._accel",
    "Compiled fast paths of dsxir.optimizer_session (optional).",
    -1,
    accel_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__accel(void)
{
    crc_init();
    index_words(&SECRET_INDEX);
    index_words(&QUALIFIER_INDEX);
    index_words(&HEAD_INDEX);
    index_words(&KEY_INDEX);
    if (str_name == NULL) {
        str_name = PyUnicode_InternFromString("name");
        str_to_bytes = PyUnicode_InternFromString("to_bytes");
        str_bit_length = PyUnicode_InternFromString("bit_length");
        str_big = PyUnicode_InternFromString("big");
        signed_kwargs = PyDict_New();
        if (str_name == NULL || str_to_bytes == NULL || str_bit_length == NULL ||
            str_big == NULL || signed_kwargs == NULL ||
            PyDict_SetItemString(signed_kwargs, "signed", Py_True) < 0) {
            return NULL;
        }
    }
    return PyModule_Create(&accel_module);
}
