package com.dsxir.checkpoint;

import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Trainsets kept as JSON text (FORMAT.md §6.1): {@link #hashTrainsetJson(byte[])} and {@link
 * #hashTrainsetJsonl(byte[])} give the digest of {@link Sessions#hashTrainset(List)} over the
 * examples the text holds, the same in every language.
 *
 * <p>Each JSON value becomes a Java value and then a Term ({@link Terms}): {@code null} the null
 * Term, {@code true}/{@code false} a bool; a number without fraction and exponent an integer
 * ({@code int_value} in int64, else {@code bigint_value}, never a float; {@code -0} is 0); any
 * other number the nearest double ({@code -0.0} kept); a string a string, an array a list, an
 * object a map with string keys.
 *
 * <p>The parser is strict RFC 8259 and refuses, with an {@link InvalidJson} naming the byte offset
 * (and for JSON Lines the line): text over {@value Checkpoints#MAX_INPUT_BYTES} bytes, text that is
 * not UTF-8, a byte order mark, any syntax error, {@code NaN}/{@code Infinity}, leading zeros, a
 * number whose nearest double is infinite, an integer of more than {@value #MAX_INTEGER_DIGITS}
 * digits, an escape of a lone surrogate, two equal keys in one object, content after the value, and
 * nesting deeper than {@value Terms#MAX_TERM_DEPTH} (the examples are at depth 1).
 *
 * <p>The text is read twice, once to count the examples and once to hash them: memory holds one
 * example at a time.
 */
public final class TrainsetJson {
  /**
   * The most digits an integer may have: converting more to binary would take time growing with
   * the square of their number.
   */
  public static final int MAX_INTEGER_DIGITS = 4300;

  private TrainsetJson() {}

  /**
   * JSON text refused by {@link #hashTrainsetJson(byte[])} or {@link #hashTrainsetJsonl(byte[])}.
   * The message reads {@code byte <offset>: <detail>}, or for JSON Lines {@code line <line>, byte
   * <offset>: <detail>}.
   */
  public static final class InvalidJson extends Exception {
    private static final long serialVersionUID = 1L;

    private final int offset;
    private final int line;
    private final String detail;

    InvalidJson(int offset, int line, String detail) {
      super((line > 0 ? "line " + line + ", byte " : "byte ") + offset + ": " + detail);
      this.offset = offset;
      this.line = line;
      this.detail = detail;
    }

    /** The 0-based byte offset in the whole text where the problem is. */
    public int offset() {
      return offset;
    }

    /** For JSON Lines, the 1-based line of {@link #offset()}; 0 for JSON text. */
    public int line() {
      return line;
    }

    /** What is wrong there. */
    public String detail() {
      return detail;
    }
  }

  /** Receives each example with its index and the byte offset where it starts. */
  private interface Visitor {
    void example(int index, int offset, int line, Object value) throws InvalidJson;
  }

  /**
   * The trainset hash (FORMAT.md §6) of JSON text holding one array whose elements are the
   * examples, in order; {@code []} is the empty trainset.
   *
   * @throws InvalidJson naming the byte offset of the problem
   */
  public static byte[] hashTrainsetJson(byte[] text) throws InvalidJson {
    check(text, false);
    int[] count = {0};
    jsonExamples(text, (i, offset, line, value) -> count[0]++);
    Hasher hasher = new Hasher(count[0]);
    jsonExamples(text, hasher);
    return hasher.digest();
  }

  /**
   * The trainset hash (FORMAT.md §6) of JSON Lines: the text is split at {@code \n}, a trailing
   * {@code \r} of a line is removed, lines then empty or of spaces and tabs only are skipped, and
   * every other line is one JSON value, one example. Empty text is the empty trainset.
   *
   * @throws InvalidJson naming the line and byte offset of the problem
   */
  public static byte[] hashTrainsetJsonl(byte[] text) throws InvalidJson {
    check(text, true);
    int[] count = {0};
    jsonlExamples(text, (i, offset, line, value) -> count[0]++);
    Hasher hasher = new Hasher(count[0]);
    jsonlExamples(text, hasher);
    return hasher.digest();
  }

  /** Feeds each example's canonical Term bytes to SHA-256 after the header of §6. */
  private static final class Hasher implements Visitor {
    private final MessageDigest sha256;
    private final ByteBuffer length = ByteBuffer.allocate(Long.BYTES); // big-endian

    Hasher(int count) {
      try {
        sha256 = MessageDigest.getInstance("SHA-256");
      } catch (NoSuchAlgorithmException e) {
        throw new IllegalStateException("every Java platform has SHA-256", e);
      }
      sha256.update(Sessions.TRAINSET_DOMAIN);
      sha256.update(length.putLong(0, count).array());
    }

    @Override
    public void example(int index, int offset, int line, Object value) throws InvalidJson {
      byte[] bytes;
      try {
        bytes = Terms.termBytes(value, "trainset[" + index + "]");
      } catch (InvalidCheckpoint e) { // the parser refused all that Terms refuses
        throw new InvalidJson(offset, line, e.getMessage());
      }
      sha256.update(length.putLong(0, bytes.length).array());
      sha256.update(bytes);
    }

    byte[] digest() {
      return sha256.digest();
    }
  }

  // --- the text --------------------------------------------------------------------------------

  /** Size, UTF-8 and the byte order mark. */
  private static void check(byte[] text, boolean lines) throws InvalidJson {
    Objects.requireNonNull(text, "text");
    if (text.length > Checkpoints.MAX_INPUT_BYTES) {
      throw new InvalidJson(
          0,
          lines ? 1 : 0,
          "text is "
              + text.length
              + " bytes, more than the limit of "
              + Checkpoints.MAX_INPUT_BYTES
              + " bytes");
    }
    int bad = firstNonUtf8(text);
    if (bad >= 0) {
      throw new InvalidJson(bad, lines ? lineAt(text, bad) : 0, "not UTF-8 text");
    }
    if (text.length >= 3
        && (text[0] & 0xFF) == 0xEF
        && (text[1] & 0xFF) == 0xBB
        && (text[2] & 0xFF) == 0xBF) {
      throw new InvalidJson(0, lines ? 1 : 0, "a byte order mark is not allowed");
    }
  }

  /** The offset of the first byte that does not start a well-formed UTF-8 sequence, or -1. */
  private static int firstNonUtf8(byte[] b) {
    int i = 0;
    while (i < b.length) {
      int c = b[i] & 0xFF;
      if (c < 0x80) {
        i++;
        continue;
      }
      int need;
      int lo = 0x80;
      int hi = 0xBF;
      if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
      } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0) {
          lo = 0xA0;
        } else if (c == 0xED) {
          hi = 0x9F; // no surrogates
        }
      } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0) {
          lo = 0x90;
        } else if (c == 0xF4) {
          hi = 0x8F;
        }
      } else {
        return i;
      }
      if (i + need >= b.length) {
        return i;
      }
      int second = b[i + 1] & 0xFF;
      if (second < lo || second > hi) {
        return i;
      }
      for (int k = 2; k <= need; k++) {
        int next = b[i + k] & 0xFF;
        if (next < 0x80 || next > 0xBF) {
          return i;
        }
      }
      i += need + 1;
    }
    return -1;
  }

  /** The 1-based line of a byte offset. */
  private static int lineAt(byte[] text, int offset) {
    int line = 1;
    for (int i = 0; i < offset && i < text.length; i++) {
      if (text[i] == '\n') {
        line++;
      }
    }
    return line;
  }

  private static void jsonExamples(byte[] text, Visitor visitor) throws InvalidJson {
    Parser p = new Parser(text, 0, text.length, 0);
    p.skipWhitespace();
    int first = p.peek();
    if (first < 0) {
      throw p.error(p.pos, "no JSON value: the text is empty or blank");
    }
    if (first != '[') {
      if (first == '{' || first == '"' || first == '-' || (first >= '0' && first <= '9')
          || first == 't' || first == 'f' || first == 'n') {
        throw p.error(p.pos, "the trainset must be a JSON array");
      }
      throw p.unexpected();
    }
    p.pos++;
    p.skipWhitespace();
    if (p.peek() == ']') {
      p.pos++;
    } else {
      for (int i = 0; ; i++) {
        p.skipWhitespace();
        int start = p.pos;
        visitor.example(i, start, 0, p.value(1));
        p.skipWhitespace();
        int c = p.peek();
        if (c == ',') {
          p.pos++;
        } else if (c == ']') {
          p.pos++;
          break;
        } else if (c < 0) {
          throw p.error(p.pos, "unexpected end of text in the array");
        } else {
          throw p.error(p.pos, "expected ',' or ']' after an array element");
        }
      }
    }
    p.finish();
  }

  private static void jsonlExamples(byte[] text, Visitor visitor) throws InvalidJson {
    int index = 0;
    int line = 1;
    int start = 0;
    while (start < text.length) {
      int newline = start;
      while (newline < text.length && text[newline] != '\n') {
        newline++;
      }
      int end = newline;
      if (end > start && text[end - 1] == '\r') {
        end--;
      }
      boolean blank = true;
      for (int i = start; i < end && blank; i++) {
        blank = text[i] == ' ' || text[i] == '\t';
      }
      if (!blank) {
        Parser p = new Parser(text, start, end, line);
        p.skipWhitespace();
        int at = p.pos;
        Object value = p.value(1);
        p.finish();
        visitor.example(index, at, line, value);
        index++;
      }
      start = newline + 1;
      line++;
    }
  }

  // --- the parser --------------------------------------------------------------------------------

  /** A recursive-descent parser over {@code b[pos..end)}; offsets are in the whole text. */
  private static final class Parser {
    private final byte[] b;
    private final int end;
    private final int line;
    private int pos;

    Parser(byte[] b, int pos, int end, int line) {
      this.b = b;
      this.pos = pos;
      this.end = end;
      this.line = line;
    }

    InvalidJson error(int offset, String detail) {
      return new InvalidJson(offset, line, detail);
    }

    InvalidJson unexpected() {
      int c = b[pos] & 0xFF;
      String shown;
      if (c >= 0x80) {
        int length = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        shown = "'" + new String(b, pos, Math.min(length, end - pos), StandardCharsets.UTF_8) + "'";
      } else if (c > 0x20 && c != 0x7F) {
        shown = "'" + (char) c + "'";
      } else {
        shown = String.format("byte 0x%02x", c);
      }
      return error(pos, "unexpected character " + shown);
    }

    /** The byte at {@code pos}, or -1 at the end. */
    int peek() {
      return pos < end ? b[pos] & 0xFF : -1;
    }

    int peekAt(int at) {
      return at < end ? b[at] & 0xFF : -1;
    }

    void skipWhitespace() {
      while (pos < end && (b[pos] == ' ' || b[pos] == '\t' || b[pos] == '\n' || b[pos] == '\r')) {
        pos++;
      }
    }

    /** After the value: only whitespace up to the end. */
    void finish() throws InvalidJson {
      skipWhitespace();
      if (pos < end) {
        throw error(pos, "content after the JSON value");
      }
    }

    /** One value at Term depth {@code depth}. */
    Object value(int depth) throws InvalidJson {
      if (depth > Terms.MAX_TERM_DEPTH) {
        throw error(pos, "nesting deeper than " + Terms.MAX_TERM_DEPTH);
      }
      int c = peek();
      switch (c) {
        case -1:
          throw error(pos, "unexpected end of text, expected a JSON value");
        case '[':
          return array(depth);
        case '{':
          return object(depth);
        case '"':
          return string();
        case 't':
          return literal("true", Boolean.TRUE);
        case 'f':
          return literal("false", Boolean.FALSE);
        case 'n':
          return literal("null", null);
        default:
          if (c == '-' || (c >= '0' && c <= '9')) {
            return number();
          }
          throw unexpected();
      }
    }

    private Object literal(String word, Object value) throws InvalidJson {
      for (int i = 0; i < word.length(); i++) {
        if (peekAt(pos + i) != word.charAt(i)) {
          throw error(pos, "invalid literal, expected " + word);
        }
      }
      pos += word.length();
      return value;
    }

    private List<Object> array(int depth) throws InvalidJson {
      pos++; // '['
      List<Object> items = new ArrayList<>();
      skipWhitespace();
      if (peek() == ']') {
        pos++;
        return items;
      }
      while (true) {
        skipWhitespace();
        items.add(value(depth + 1));
        skipWhitespace();
        int c = peek();
        if (c == ',') {
          pos++;
        } else if (c == ']') {
          pos++;
          return items;
        } else if (c < 0) {
          throw error(pos, "unexpected end of text in an array");
        } else {
          throw error(pos, "expected ',' or ']' after an array element");
        }
      }
    }

    private Map<String, Object> object(int depth) throws InvalidJson {
      pos++; // '{'
      Map<String, Object> entries = new LinkedHashMap<>();
      Set<String> seen = new HashSet<>();
      skipWhitespace();
      if (peek() == '}') {
        pos++;
        return entries;
      }
      while (true) {
        skipWhitespace();
        int at = pos;
        int c = peek();
        if (c < 0) {
          throw error(at, "unexpected end of text in an object");
        }
        if (c != '"') {
          throw error(at, "expected a string key in an object");
        }
        if (depth + 1 > Terms.MAX_TERM_DEPTH) {
          throw error(at, "nesting deeper than " + Terms.MAX_TERM_DEPTH);
        }
        String key = string();
        if (!seen.add(key)) {
          throw error(at, "duplicate key " + quote(key));
        }
        skipWhitespace();
        if (peek() != ':') {
          throw error(pos, "expected ':' after an object key");
        }
        pos++;
        skipWhitespace();
        entries.put(key, value(depth + 1));
        skipWhitespace();
        c = peek();
        if (c == ',') {
          pos++;
        } else if (c == '}') {
          pos++;
          return entries;
        } else if (c < 0) {
          throw error(pos, "unexpected end of text in an object");
        } else {
          throw error(pos, "expected ',' or '}' after an object member");
        }
      }
    }

    /** A string starting at the opening quote, unescaped. */
    private String string() throws InvalidJson {
      int open = pos;
      pos++;
      StringBuilder out = new StringBuilder();
      int run = pos;
      while (true) {
        int c = peek();
        if (c < 0) {
          throw error(open, "unterminated string");
        }
        if (c == '"' || c == '\\') {
          // The text is UTF-8 and both are ASCII: run..pos holds whole characters.
          out.append(new String(b, run, pos - run, StandardCharsets.UTF_8));
          if (c == '"') {
            pos++;
            return out.toString();
          }
          escape(out);
          run = pos;
        } else if (c < 0x20) {
          throw error(pos, "control character in a string");
        } else {
          pos++;
        }
      }
    }

    /** One escape sequence at {@code pos} (the backslash); a surrogate pair is one. */
    private void escape(StringBuilder out) throws InvalidJson {
      int at = pos;
      int c = peekAt(at + 1);
      if (c < 0) {
        throw error(at, "unterminated string");
      }
      pos += 2;
      switch (c) {
        case '"' -> out.append('"');
        case '\\' -> out.append('\\');
        case '/' -> out.append('/');
        case 'b' -> out.append('\b');
        case 'f' -> out.append('\f');
        case 'n' -> out.append('\n');
        case 'r' -> out.append('\r');
        case 't' -> out.append('\t');
        case 'u' -> {
          int high = hex4(at);
          if (Character.isLowSurrogate((char) high)) {
            throw error(at, "escape of a lone surrogate");
          }
          if (Character.isHighSurrogate((char) high)) {
            if (peek() != '\\' || peekAt(pos + 1) != 'u') {
              throw error(at, "escape of a lone surrogate");
            }
            pos += 2;
            int low = hex4(at);
            if (!Character.isLowSurrogate((char) low)) {
              throw error(at, "escape of a lone surrogate");
            }
            out.append((char) high).append((char) low);
          } else {
            out.append((char) high);
          }
        }
        default -> throw error(at, "invalid escape in a string");
      }
    }

    /** Four hex digits at {@code pos}. */
    private int hex4(int escape) throws InvalidJson {
      int code = 0;
      for (int i = 0; i < 4; i++) {
        int digit = Character.digit(peek(), 16);
        if (peek() < 0 || peek() >= 0x80 || digit < 0) {
          throw error(escape, "\\u must be followed by four hex digits");
        }
        code = code * 16 + digit;
        pos++;
      }
      return code;
    }

    private int digits() {
      int start = pos;
      while (pos < end && b[pos] >= '0' && b[pos] <= '9') {
        pos++;
      }
      return pos - start;
    }

    private Object number() throws InvalidJson {
      int start = pos;
      if (peek() == '-') {
        pos++;
      }
      int intStart = pos;
      int intDigits = digits();
      if (intDigits == 0) {
        throw error(start, "invalid number: no digit after '-'");
      }
      if (intDigits > 1 && b[intStart] == '0') {
        throw error(start, "invalid number: leading zero");
      }
      boolean isFloat = false;
      if (peek() == '.') {
        pos++;
        if (digits() == 0) {
          throw error(start, "invalid number: no digit after '.'");
        }
        isFloat = true;
      }
      if (peek() == 'e' || peek() == 'E') {
        pos++;
        if (peek() == '+' || peek() == '-') {
          pos++;
        }
        if (digits() == 0) {
          throw error(start, "invalid number: no digit in the exponent");
        }
        isFloat = true;
      }
      String token = new String(b, start, pos - start, StandardCharsets.US_ASCII);
      if (isFloat) {
        // The token has the shape Double.parseDouble reads, which rounds to nearest, ties to even.
        double d = Double.parseDouble(token);
        if (Double.isInfinite(d)) {
          throw error(start, "number out of the range of a double");
        }
        return d;
      }
      if (intDigits > MAX_INTEGER_DIGITS) {
        throw error(start, "integer of more than " + MAX_INTEGER_DIGITS + " digits");
      }
      if (intDigits <= 18) {
        return Long.parseLong(token);
      }
      return new BigInteger(token);
    }
  }

  /** A string in double quotes, with JSON's escapes, on one line. */
  private static String quote(String s) {
    StringBuilder out = new StringBuilder(s.length() + 2).append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c == '"' || c == '\\') {
        out.append('\\').append(c);
      } else if (c < 0x20 || c == 0x7F) {
        out.append(String.format("\\u%04x", (int) c));
      } else {
        out.append(c);
      }
    }
    return out.append('"').toString();
  }
}
