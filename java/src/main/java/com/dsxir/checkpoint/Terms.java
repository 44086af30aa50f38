package com.dsxir.checkpoint;

import com.dsxir.optimizer_session.v1.Term;
import com.dsxir.optimizer_session.v1.TermList;
import com.dsxir.optimizer_session.v1.TermMap;
import com.dsxir.optimizer_session.v1.TermMapEntry;
import com.dsxir.optimizer_session.v1.TermNull;
import com.google.protobuf.ByteString;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.RecordComponent;
import java.math.BigInteger;
import java.util.AbstractMap;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Term values: open data (options, stats, errors, artifacts, trainset examples) as canonical Term
 * messages (FORMAT.md §1, §3).
 *
 * <p>Java values map to Terms one to one:
 *
 * <table>
 *   <caption>Java values and Term kinds</caption>
 *   <tr><th>Java value</th><th>Term kind</th></tr>
 *   <tr><td>{@code null}</td><td>{@code null_value}</td></tr>
 *   <tr><td>{@link Boolean}</td><td>{@code bool_value}</td></tr>
 *   <tr><td>{@link Byte}, {@link Short}, {@link Integer}, {@link Long}</td>
 *       <td>{@code int_value}</td></tr>
 *   <tr><td>{@link BigInteger}</td><td>{@code int_value} in the int64 range, otherwise
 *       {@code bigint_value} (minimal two's complement, big-endian)</td></tr>
 *   <tr><td>{@link Double}, {@link Float}</td><td>{@code float_value} (NaN refused, -0.0 kept)</td>
 *       </tr>
 *   <tr><td>{@link String}</td><td>{@code string_value} (no lone surrogate)</td></tr>
 *   <tr><td>{@code byte[]}, {@link ByteString}</td><td>{@code bytes_value}</td></tr>
 *   <tr><td>{@link Atom}</td><td>{@code atom_value}</td></tr>
 *   <tr><td>{@link List}</td><td>{@code list_value}</td></tr>
 *   <tr><td>{@link TermTuple}</td><td>{@code tuple_value}</td></tr>
 *   <tr><td>{@link Map} (keys of any type above), a record (its components' names as string
 *       keys)</td><td>{@code map_value}, entries sorted by the canonical bytes of their key</td>
 *       </tr>
 *   <tr><td>{@link Term}, {@link TermMap}</td><td>itself, checked, with its maps sorted</td></tr>
 * </table>
 *
 * <p>{@code true}, {@code 1L}, {@code 1.0} and {@code "1"} are four different Terms. Refused with
 * an {@link InvalidCheckpoint} whose path names the offending value from a root ({@code value}
 * unless given), e.g. {@code value[2]["k"]}: any other type, NaN, a string or atom name with a lone
 * surrogate, nesting deeper than {@value #MAX_TERM_DEPTH}, and two map keys with the same canonical
 * bytes (reported at the map).
 *
 * <p>{@link #fromTerm(Term)} goes back: {@code int_value} is a {@link Long}, {@code bigint_value} a
 * {@link BigInteger}, {@code float_value} a {@link Double}, {@code bytes_value} a {@code byte[]}, a
 * list an {@link ArrayList}, a tuple a {@link TermTuple}, a map a {@link LinkedHashMap} in
 * canonical key order (a {@code byte[]} key is then compared by identity, as Java arrays are).
 */
public final class Terms {
  /** The deepest Term a reader accepts and a writer builds (a scalar Term has depth 1). */
  public static final int MAX_TERM_DEPTH = Checkpoints.MAX_TERM_DEPTH;

  private static final Term NULL_TERM =
      Term.newBuilder().setNullValue(TermNull.getDefaultInstance()).build();

  private Terms() {}

  // --- Java values to Terms ------------------------------------------------------------------

  /**
   * The canonical Term of a Java value (see the table above).
   *
   * @throws InvalidCheckpoint naming the offending value from {@code value}, e.g. {@code
   *     value[2]["k"]}
   */
  public static Term toTerm(Object value) {
    return toTerm(value, "value");
  }

  /**
   * The canonical Term of a Java value; a refusal's path starts at {@code root}.
   *
   * @throws InvalidCheckpoint naming the offending value
   */
  public static Term toTerm(Object value, String root) {
    try {
      return encode(value, 1);
    } catch (TermRefusal bad) {
      throw bad.toInvalid(root);
    }
  }

  /**
   * The canonical TermMap of a {@link Map} or a record, as a {@code stats}, {@code error} or {@code
   * best_program_artifact} field holds it: the map counts as a Term of depth 1, so its keys and
   * values are at depth 2.
   *
   * @throws InvalidCheckpoint naming the offending value from {@code root}; a value that is not a
   *     mapping is refused at {@code root}
   */
  public static TermMap toTermMap(Object value, String root) {
    try {
      if (!(value instanceof Map<?, ?> || isRecord(value) || value instanceof TermMap)) {
        throw new TermRefusal(null, typeName(value) + " is not a mapping");
      }
      return value instanceof TermMap map ? canonicalMap(map, 2) : encodeMap(value, 2);
    } catch (TermRefusal bad) {
      throw bad.toInvalid(root);
    }
  }

  /** {@link #toTermMap(Object, String)} with the root {@code value}. */
  public static TermMap toTermMap(Object value) {
    return toTermMap(value, "value");
  }

  /**
   * The canonical bytes of a Java value as a Term message (FORMAT.md §3.4): the bytes by which map
   * entries are ordered and trainset examples hashed. A {@link Term} given here is checked and its
   * maps sorted first.
   *
   * @throws InvalidCheckpoint naming the offending value from {@code value}
   */
  public static byte[] termBytes(Object value) {
    return Checkpoints.termBytes(toTerm(value, "value"));
  }

  /** {@link #termBytes(Object)}, a refusal's path starting at {@code root}. */
  public static byte[] termBytes(Object value, String root) {
    return Checkpoints.termBytes(toTerm(value, root));
  }

  private static Term encode(Object value, int depth) throws TermRefusal {
    if (depth > MAX_TERM_DEPTH) {
      throw new TermRefusal(Rules.TERM_DEPTH, "nesting deeper than " + MAX_TERM_DEPTH);
    }
    if (value == null) {
      return NULL_TERM;
    }
    if (value instanceof Boolean b) {
      return Term.newBuilder().setBoolValue(b).build();
    }
    if (value instanceof Long
        || value instanceof Integer
        || value instanceof Short
        || value instanceof Byte) {
      return Term.newBuilder().setIntValue(((Number) value).longValue()).build();
    }
    if (value instanceof BigInteger n) {
      return integer(n);
    }
    if (value instanceof Double || value instanceof Float) {
      double d = ((Number) value).doubleValue();
      if (Double.isNaN(d)) {
        throw new TermRefusal(Rules.FLOAT_NAN, "NaN is not allowed");
      }
      return Term.newBuilder().setFloatValue(d).build();
    }
    if (value instanceof String s) {
      if (!isValidUnicode(s)) {
        throw new TermRefusal(null, "string is not valid Unicode (lone surrogate)");
      }
      return Term.newBuilder().setStringValue(s).build();
    }
    if (value instanceof byte[] raw) {
      return Term.newBuilder().setBytesValue(ByteString.copyFrom(raw)).build();
    }
    if (value instanceof ByteString raw) {
      return Term.newBuilder().setBytesValue(raw).build();
    }
    if (value instanceof Atom atom) {
      if (!isValidUnicode(atom.name())) {
        throw new TermRefusal(null, "atom name is not valid Unicode (lone surrogate)");
      }
      return Term.newBuilder().setAtomValue(atom.name()).build();
    }
    if (value instanceof Term term) {
      return canonical(term, depth);
    }
    if (value instanceof TermMap map) {
      return Term.newBuilder().setMapValue(canonicalMap(map, depth + 1)).build();
    }
    if (value instanceof TermTuple tuple) {
      return Term.newBuilder().setTupleValue(items(tuple.items(), depth + 1)).build();
    }
    if (value instanceof List<?> list) {
      return Term.newBuilder().setListValue(items(list, depth + 1)).build();
    }
    if (value instanceof Map<?, ?> || isRecord(value)) {
      return Term.newBuilder().setMapValue(encodeMap(value, depth + 1)).build();
    }
    throw new TermRefusal(null, typeName(value) + " has no Term form");
  }

  /** An integer: int_value in the int64 range, otherwise the minimal bigint_value. */
  private static Term integer(BigInteger n) {
    if (n.bitLength() < 64) {
      return Term.newBuilder().setIntValue(n.longValue()).build();
    }
    // toByteArray is the minimal two's-complement big-endian form (FORMAT.md §3.3).
    return Term.newBuilder().setBigintValue(ByteString.copyFrom(n.toByteArray())).build();
  }

  private static TermList items(List<?> list, int depth) throws TermRefusal {
    TermList.Builder out = TermList.newBuilder();
    int i = 0;
    for (Object item : list) {
      try {
        out.addItems(encode(item, depth));
      } catch (TermRefusal bad) {
        throw bad.at("[" + i + "]");
      }
      i++;
    }
    return out.build();
  }

  /** An entry with the canonical bytes of its key, for sorting. */
  private record Keyed(byte[] key, TermMapEntry entry) {}

  /** The TermMap of a Map or a record whose keys and values are at {@code depth}. */
  private static TermMap encodeMap(Object value, int depth) throws TermRefusal {
    List<Keyed> entries = new ArrayList<>();
    for (Map.Entry<?, ?> pair : pairs(value)) {
      Object key = pair.getKey();
      Term keyTerm;
      Term valueTerm;
      try {
        keyTerm = encode(key, depth);
        valueTerm = encode(pair.getValue(), depth);
      } catch (TermRefusal bad) {
        throw bad.at("[" + keyText(key) + "]");
      }
      entries.add(
          new Keyed(
              Checkpoints.termBytes(keyTerm),
              TermMapEntry.newBuilder().setKey(keyTerm).setValue(valueTerm).build()));
    }
    entries.sort((a, b) -> Arrays.compareUnsigned(a.key(), b.key()));
    TermMap.Builder out = TermMap.newBuilder();
    byte[] previous = null;
    for (Keyed keyed : entries) {
      if (previous != null && Arrays.equals(previous, keyed.key())) {
        throw new TermRefusal(
            Rules.TERM_MAP_ORDER,
            "duplicate map key (canonical bytes " + HexFormat.of().formatHex(keyed.key()) + ")");
      }
      previous = keyed.key();
      out.addEntries(keyed.entry());
    }
    return out.build();
  }

  /** The (key, value) pairs of a Map, or of a record: its components by name, in order. */
  private static Iterable<? extends Map.Entry<?, ?>> pairs(Object value) throws TermRefusal {
    if (value instanceof Map<?, ?> map) {
      return map.entrySet();
    }
    RecordComponent[] components = value.getClass().getRecordComponents();
    List<Map.Entry<?, ?>> out = new ArrayList<>(components.length);
    for (RecordComponent component : components) {
      Method accessor = component.getAccessor();
      Object item;
      try {
        accessor.trySetAccessible();
        item = accessor.invoke(value);
      } catch (IllegalAccessException | InvocationTargetException | RuntimeException e) {
        throw new TermRefusal(
                null, "cannot read record component " + component.getName() + ": " + e)
            .at("[" + keyText(component.getName()) + "]");
      }
      out.add(new AbstractMap.SimpleImmutableEntry<>(component.getName(), item));
    }
    return out;
  }

  private static boolean isRecord(Object value) {
    return value != null && value.getClass().isRecord();
  }

  /** Whether a Java string is valid Unicode (no lone surrogate), so that it has a UTF-8 form. */
  static boolean isValidUnicode(String s) {
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (Character.isSurrogate(c)) {
        if (Character.isLowSurrogate(c)
            || i + 1 >= s.length()
            || !Character.isLowSurrogate(s.charAt(i + 1))) {
          return false;
        }
        i++;
      }
    }
    return true;
  }

  private static String typeName(Object value) {
    if (value == null) {
      return "null";
    }
    String name = value.getClass().getSimpleName();
    return name.isEmpty() ? value.getClass().getName() : name;
  }

  /** How a map key reads in a path: {@code "text"}, {@code :atom}, {@code 42}, {@code <Type>}. */
  private static String keyText(Object key) {
    if (key instanceof String s) {
      return quote(s);
    }
    if (key == null || key instanceof Atom || key instanceof Boolean || key instanceof Number) {
      return String.valueOf(key);
    }
    return "<" + typeName(key) + ">";
  }

  /** A string in double quotes, with JSON's escapes. */
  private static String quote(String s) {
    StringBuilder out = new StringBuilder(s.length() + 2).append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"' -> out.append("\\\"");
        case '\\' -> out.append("\\\\");
        case '\n' -> out.append("\\n");
        case '\r' -> out.append("\\r");
        case '\t' -> out.append("\\t");
        default -> {
          if (c < 0x20) {
            out.append(String.format("\\u%04x", (int) c));
          } else {
            out.append(c);
          }
        }
      }
    }
    return out.append('"').toString();
  }

  // --- checking Term messages and sorting their maps ------------------------------------------

  /**
   * A Term message in canonical form: checked by the rules of FORMAT.md §3 (kind set, no NaN,
   * minimal big integers outside int64, depth, map entries with key and value, strings of valid
   * Unicode), its map entries sorted by the canonical bytes of their keys, whatever their order.
   * Unknown fields are not kept: the result is the canonical Term of the value {@code term} stands
   * for.
   *
   * @throws InvalidCheckpoint naming the offending part from {@code term}, e.g. {@code
   *     term.list_value.items[2].map_value.entries[1].key}; two keys with the same canonical bytes
   *     are refused at the second one's {@code .key}
   */
  public static Term canonicalTerm(Term term) {
    return canonicalTerm(term, "term");
  }

  /** {@link #canonicalTerm(Term)}, a refusal's path starting at {@code root}. */
  public static Term canonicalTerm(Term term, String root) {
    try {
      return canonical(term, 1);
    } catch (TermRefusal bad) {
      throw bad.toInvalid(root);
    }
  }

  /** {@link #canonicalTerm(Term, String)} refusing as a reader does: reason checkpoint_shape. */
  static Term canonicalOrShape(Term term, String root) throws ResumeMismatch {
    try {
      return canonical(term, 1);
    } catch (TermRefusal bad) {
      throw bad.toMismatch(root);
    }
  }

  private static Term canonical(Term term, int depth) throws TermRefusal {
    if (term == null) {
      throw new TermRefusal(null, "null Term");
    }
    if (depth > MAX_TERM_DEPTH) {
      throw new TermRefusal(Rules.TERM_DEPTH, "nesting deeper than " + MAX_TERM_DEPTH);
    }
    Term.Builder out = Term.newBuilder();
    switch (term.getKindCase()) {
      case NULL_VALUE:
        return NULL_TERM;
      case BOOL_VALUE:
        return out.setBoolValue(term.getBoolValue()).build();
      case INT_VALUE:
        return out.setIntValue(term.getIntValue()).build();
      case BIGINT_VALUE:
        String problem = Checkpoints.bigintProblem(term.getBigintValue());
        if (problem != null) {
          throw new TermRefusal(Rules.TERM_BIGINT, problem).at(".bigint_value");
        }
        return out.setBigintValue(term.getBigintValue()).build();
      case FLOAT_VALUE:
        if (Double.isNaN(term.getFloatValue())) {
          throw new TermRefusal(Rules.FLOAT_NAN, "NaN is not allowed").at(".float_value");
        }
        return out.setFloatValue(term.getFloatValue()).build();
      case STRING_VALUE:
        if (!isValidUnicode(term.getStringValue())) {
          throw new TermRefusal(null, "string is not valid Unicode (lone surrogate)")
              .at(".string_value");
        }
        return out.setStringValue(term.getStringValue()).build();
      case BYTES_VALUE:
        return out.setBytesValue(term.getBytesValue()).build();
      case ATOM_VALUE:
        if (!isValidUnicode(term.getAtomValue())) {
          throw new TermRefusal(null, "atom name is not valid Unicode (lone surrogate)")
              .at(".atom_value");
        }
        return out.setAtomValue(term.getAtomValue()).build();
      case LIST_VALUE:
        return out.setListValue(canonicalItems(term.getListValue(), depth, ".list_value")).build();
      case TUPLE_VALUE:
        return out.setTupleValue(canonicalItems(term.getTupleValue(), depth, ".tuple_value"))
            .build();
      case MAP_VALUE:
        try {
          return out.setMapValue(canonicalMap(term.getMapValue(), depth + 1)).build();
        } catch (TermRefusal bad) {
          throw bad.at(".map_value");
        }
      default:
        throw new TermRefusal(Rules.TERM_KIND, "term has no kind");
    }
  }

  private static TermList canonicalItems(TermList list, int depth, String kind) throws TermRefusal {
    TermList.Builder out = TermList.newBuilder();
    List<Term> items = list.getItemsList();
    for (int i = 0; i < items.size(); i++) {
      try {
        out.addItems(canonical(items.get(i), depth + 1));
      } catch (TermRefusal bad) {
        throw bad.at(kind + ".items[" + i + "]");
      }
    }
    return out.build();
  }

  /** A TermMap whose keys and values are at {@code depth}, checked, its entries sorted. */
  private static TermMap canonicalMap(TermMap map, int depth) throws TermRefusal {
    List<Keyed> entries = new ArrayList<>(map.getEntriesCount());
    Set<ByteString> seen = new HashSet<>();
    List<TermMapEntry> given = map.getEntriesList();
    for (int i = 0; i < given.size(); i++) {
      TermMapEntry entry = given.get(i);
      try {
        if (!entry.hasKey()) {
          throw new TermRefusal(Rules.TERM_MAP_KEY_REQUIRED, "map entry has no key");
        }
        Term key;
        try {
          key = canonical(entry.getKey(), depth);
        } catch (TermRefusal bad) {
          throw bad.at(".key");
        }
        if (!entry.hasValue()) {
          throw new TermRefusal(Rules.TERM_MAP_VALUE_REQUIRED, "map entry has no value");
        }
        Term value;
        try {
          value = canonical(entry.getValue(), depth);
        } catch (TermRefusal bad) {
          throw bad.at(".value");
        }
        byte[] keyBytes = Checkpoints.termBytes(key);
        if (!seen.add(ByteString.copyFrom(keyBytes))) {
          throw new TermRefusal(Rules.TERM_MAP_ORDER, "duplicate map key").at(".key");
        }
        entries.add(
            new Keyed(keyBytes, TermMapEntry.newBuilder().setKey(key).setValue(value).build()));
      } catch (TermRefusal bad) {
        throw bad.at(".entries[" + i + "]");
      }
    }
    entries.sort((a, b) -> Arrays.compareUnsigned(a.key(), b.key()));
    TermMap.Builder out = TermMap.newBuilder();
    for (Keyed keyed : entries) {
      out.addEntries(keyed.entry());
    }
    return out.build();
  }

  // --- Terms to Java values --------------------------------------------------------------------

  /**
   * The Java value a Term stands for (see the class comment). The Term is checked as {@link
   * #canonicalTerm(Term)} checks it: map entries may come in any order, and the map is returned in
   * canonical key order.
   *
   * @throws InvalidCheckpoint naming the offending part from {@code term}
   */
  public static Object fromTerm(Term term) {
    return fromTerm(term, "term");
  }

  /** {@link #fromTerm(Term)}, a refusal's path starting at {@code root}. */
  public static Object fromTerm(Term term, String root) {
    return plain(canonicalTerm(term, root));
  }

  /**
   * The Java map a TermMap ({@code stats}, {@code error}, {@code best_program_artifact}) stands
   * for, in canonical key order. Its keys and values count from depth 2.
   *
   * @throws InvalidCheckpoint naming the offending entry from {@code term}, e.g. {@code
   *     term.entries[0].value}
   */
  public static Map<Object, Object> fromTerm(TermMap map) {
    return fromTerm(map, "term");
  }

  /** {@link #fromTerm(TermMap)}, a refusal's path starting at {@code root}. */
  public static Map<Object, Object> fromTerm(TermMap map, String root) {
    if (map == null) {
      throw new InvalidCheckpoint(root, "null TermMap");
    }
    try {
      return plainMap(canonicalMap(map, 2));
    } catch (TermRefusal bad) {
      throw bad.toInvalid(root);
    }
  }

  /** The Java value of a canonical Term. */
  private static Object plain(Term term) {
    switch (term.getKindCase()) {
      case BOOL_VALUE:
        return term.getBoolValue();
      case INT_VALUE:
        return term.getIntValue();
      case BIGINT_VALUE:
        return new BigInteger(term.getBigintValue().toByteArray());
      case FLOAT_VALUE:
        return term.getFloatValue();
      case STRING_VALUE:
        return term.getStringValue();
      case BYTES_VALUE:
        return term.getBytesValue().toByteArray();
      case ATOM_VALUE:
        return new Atom(term.getAtomValue());
      case LIST_VALUE:
        return plainItems(term.getListValue());
      case TUPLE_VALUE:
        return new TermTuple(plainItems(term.getTupleValue()));
      case MAP_VALUE:
        return plainMap(term.getMapValue());
      default: // NULL_VALUE: canonical Terms always have a kind
        return null;
    }
  }

  private static List<Object> plainItems(TermList list) {
    List<Object> out = new ArrayList<>(list.getItemsCount());
    for (Term item : list.getItemsList()) {
      out.add(plain(item));
    }
    return out;
  }

  private static Map<Object, Object> plainMap(TermMap map) {
    Map<Object, Object> out = new LinkedHashMap<>();
    for (TermMapEntry entry : map.getEntriesList()) {
      out.put(plain(entry.getKey()), plain(entry.getValue()));
    }
    return out;
  }
}
