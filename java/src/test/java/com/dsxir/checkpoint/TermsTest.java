package com.dsxir.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.dsxir.optimizer_session.v1.Term;
import com.dsxir.optimizer_session.v1.TermList;
import com.dsxir.optimizer_session.v1.TermMap;
import com.dsxir.optimizer_session.v1.TermMapEntry;
import com.google.protobuf.ByteString;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/** Java values as Terms: the canonical bytes Python writes, refusals with Python's paths. */
class TermsTest {
  private static final HexFormat HEX = HexFormat.of();

  private static String hex(Object value) {
    return HEX.formatHex(Terms.termBytes(value));
  }

  private static final BigInteger TWO_63 = BigInteger.ONE.shiftLeft(63);
  private static final BigInteger TWO_64 = BigInteger.ONE.shiftLeft(64);

  /** Expected bytes: Python's term_bytes of the same values. */
  @Test
  void scalarsHavePythonsBytes() {
    assertEquals("2209008000000000000000", hex(TWO_63));
    assertEquals("18ffffffffffffffffff01", hex(TWO_63.negate()));
    assertEquals("18ffffffffffffffffff01", hex(Long.MIN_VALUE));
    assertEquals("18feffffffffffffffff01", hex(TWO_63.subtract(BigInteger.ONE)));
    assertEquals("18feffffffffffffffff01", hex(Long.MAX_VALUE));
    assertEquals("2209ff7fffffffffffffff", hex(TWO_63.negate().subtract(BigInteger.ONE)));
    assertEquals("2209010000000000000000", hex(TWO_64));
    assertEquals("2209ff0000000000000000", hex(TWO_64.negate()));
    assertEquals("220df0000000000000000000000000", hex(BigInteger.ONE.shiftLeft(100).negate()));
    assertEquals("1801", hex(-1L));
    assertEquals("1801", hex(-1));
    assertEquals("1801", hex((short) -1));
    assertEquals("1801", hex(BigInteger.ONE.negate()));
    assertEquals("290000000000000080", hex(-0.0));
    assertEquals("290000000000000000", hex(0.0));
    assertEquals("29000000000000f07f", hex(Double.POSITIVE_INFINITY));
    assertEquals("29000000000000f07f", hex(Float.POSITIVE_INFINITY));
    assertEquals("320c4772c3bcc39f6520f09d849e", hex("Grüße 𝄞"));
    assertEquals("4a00", hex(List.of()));
    assertEquals("0a00", hex(null));
    assertEquals("1001", hex(true));
    assertEquals("1000", hex(false));
    assertEquals("3a00", hex(new byte[0]));
    assertEquals("4200", hex(new Atom("")));
    assertEquals("4202ce94", hex(new Atom("Δ")));
  }

  @Test
  void oneAndTrueAndOnePointZeroAndTheStringOneDiffer() {
    Set<String> seen = new HashSet<>();
    for (Object v : new Object[] {1L, 1.0, true, "1", new Atom("1"), BigInteger.ONE}) {
      seen.add(hex(v));
    }
    assertEquals(5, seen.size()); // 1L and BigInteger.ONE are the same Term
  }

  @Test
  void mapsAreSortedByTheirKeysCanonicalBytes() {
    // Python: {'b': 1, 'a': [True, None], 2: b'\x00', Atom('k'): (1, 'x')}
    String python =
        "5a3d0a090a02180412033a01000a110a03320161120a4a080a0210010a020a000a090a03320162120218020a"
            + "120a0342016b120b52090a0218020a03320178";
    Map<Object, Object> first = new LinkedHashMap<>();
    first.put("b", 1L);
    first.put("a", Arrays.asList(true, null));
    first.put(2, new byte[] {0});
    first.put(new Atom("k"), TermTuple.of(1L, "x"));
    assertEquals(python, hex(first));
    Map<Object, Object> reversed = new LinkedHashMap<>();
    List<Object> keys = new ArrayList<>(first.keySet());
    for (int i = keys.size() - 1; i >= 0; i--) {
      reversed.put(keys.get(i), first.get(keys.get(i)));
    }
    assertEquals(python, hex(reversed));
    // Key bytes hold the length first; bytes compare unsigned (é is c3 a9).
    Map<String, Object> strings = new TreeMap<>(Map.of("ab", 1L, "a", 2L, "é", 3L, "z", 4L));
    Map<?, ?> back = (Map<?, ?>) Terms.fromTerm(Terms.toTerm(strings));
    assertEquals(List.of("a", "z", "ab", "é"), new ArrayList<>(back.keySet()));
  }

  @Test
  void mapKeysMayBeAnyTerm() {
    Map<Object, Object> map = new LinkedHashMap<>();
    map.put(List.of(1L, 2L), "list");
    map.put(TermTuple.of(1L, 2L), "tuple");
    map.put(Map.of("k", 1L), "map");
    map.put(null, "null");
    map.put(-0.0, "negative zero");
    map.put(0.0, "zero");
    Term term = Terms.toTerm(map);
    Map<?, ?> back = (Map<?, ?>) Terms.fromTerm(term);
    assertEquals(6, back.size());
    assertEquals("list", back.get(List.of(1L, 2L)));
    assertEquals("tuple", back.get(TermTuple.of(1L, 2L)));
    assertEquals("map", back.get(Map.of("k", 1L)));
    assertEquals("null", back.get(null));
    assertEquals("negative zero", back.get(-0.0));
    assertEquals("zero", back.get(0.0));
    assertArrayEquals(Checkpoints.termBytes(term), Terms.termBytes(back));
  }

  @Test
  void duplicateKeysAreRefusedAtTheMap() {
    Map<Object, Object> map = new LinkedHashMap<>();
    map.put(new byte[] {1}, "x");
    map.put(new byte[] {1}, "y"); // distinct arrays, the same Term
    InvalidCheckpoint e =
        assertThrows(InvalidCheckpoint.class, () -> Terms.toTerm(List.of("a", map)));
    assertEquals("value[1]", e.path());
    assertEquals("duplicate map key (canonical bytes 3a0101)", e.detail());

    Map<Object, Object> same = new LinkedHashMap<>();
    same.put(1L, "x");
    same.put(BigInteger.ONE, "y");
    assertEquals("value", assertThrows(InvalidCheckpoint.class, () -> Terms.toTerm(same)).path());
  }

  @Test
  void refusalsNameThePathAsPythonDoes() {
    Map<String, Object> nan = new LinkedHashMap<>();
    nan.put("k", Double.NaN);
    InvalidCheckpoint e =
        assertThrows(InvalidCheckpoint.class, () -> Terms.toTerm(List.of(1L, 2L, nan)));
    // Python: value[2]['k']: NaN is not allowed
    assertEquals("value[2][\"k\"]: NaN is not allowed (rule float.nan)", e.getMessage());
    assertEquals("value[2][\"k\"]", e.path());

    e = assertThrows(InvalidCheckpoint.class, () -> Terms.toTerm(Float.NaN));
    assertEquals("value: NaN is not allowed (rule float.nan)", e.getMessage());

    Map<String, Object> inner = Map.of("b", new HashSet<>(Set.of(1L)));
    Map<String, Object> outer = Map.of("a", List.of(1L, inner));
    e = assertThrows(InvalidCheckpoint.class, () -> Terms.toTerm(outer));
    assertEquals("value[\"a\"][1][\"b\"]: HashSet has no Term form", e.getMessage());

    e = assertThrows(InvalidCheckpoint.class, () -> Terms.toTerm(Map.of(new Atom("x"), 'c')));
    assertEquals("value[:x]: Character has no Term form", e.getMessage());

    e = assertThrows(InvalidCheckpoint.class, () -> Terms.toTerm(List.of("ok", "\ud800x"), "opt"));
    assertEquals("opt[1]: string is not valid Unicode (lone surrogate)", e.getMessage());
    e = assertThrows(InvalidCheckpoint.class, () -> Terms.toTerm(new Atom("\udc00")));
    assertEquals("value: atom name is not valid Unicode (lone surrogate)", e.getMessage());
    assertEquals("32054ff09f9880", hex("O😀")); // a surrogate pair is fine

    Map<Object, Object> quoted = new LinkedHashMap<>();
    quoted.put("say \"hi\"\n", new Object());
    e = assertThrows(InvalidCheckpoint.class, () -> Terms.toTerm(quoted));
    assertEquals("value[\"say \\\"hi\\\"\\n\"]", e.path());
  }

  private static Object nested(int depth) {
    Object value = null;
    for (int i = 1; i < depth; i++) {
      value = Arrays.asList(value);
    }
    return value;
  }

  @Test
  void depthIsLimitedTo24() {
    // Python: 23 lists around None encode to 94 bytes; one more list is refused.
    assertEquals(94, Terms.termBytes(nested(24)).length);
    InvalidCheckpoint e = assertThrows(InvalidCheckpoint.class, () -> Terms.toTerm(nested(25)));
    assertEquals("value" + "[0]".repeat(24), e.path());
    assertEquals("nesting deeper than 24", e.detail());
    // An empty list has depth 1, a map's keys and values are one level down.
    Object emptyAt24 = List.of();
    for (int i = 1; i < 24; i++) {
      emptyAt24 = List.of(emptyAt24);
    }
    Terms.toTerm(emptyAt24);
    assertThrows(InvalidCheckpoint.class, () -> Terms.toTerm(Map.of("k", nested(24))));
    Terms.toTerm(Map.of("k", nested(23)));
    // A TermMap field counts as depth 1: its values start at depth 2.
    Terms.toTermMap(Map.of("k", nested(23)));
    e = assertThrows(InvalidCheckpoint.class, () -> Terms.toTermMap(Map.of("k", nested(24))));
    assertEquals("value[\"k\"]" + "[0]".repeat(23), e.path());
  }

  @Test
  void valuesComeBackFromTheirTerms() {
    byte[] raw = {1, 2, (byte) 0xff};
    Map<Object, Object> map = new LinkedHashMap<>();
    map.put("int", 7L);
    map.put("big", TWO_64.negate());
    map.put("edge", TWO_63);
    map.put("float", -0.0);
    map.put("inf", Double.NEGATIVE_INFINITY);
    map.put("bytes", raw);
    map.put("atom", new Atom("ok"));
    map.put("tuple", TermTuple.of(1L, null, "x"));
    map.put("list", Arrays.asList(true, null, List.of()));
    Map<?, ?> back = (Map<?, ?>) Terms.fromTerm(Terms.toTerm(map));
    assertEquals(7L, back.get("int"));
    assertEquals(TWO_64.negate(), back.get("big"));
    assertEquals(TWO_63, back.get("edge"));
    assertEquals(
        Double.doubleToRawLongBits(-0.0), Double.doubleToRawLongBits((Double) back.get("float")));
    assertEquals(Double.NEGATIVE_INFINITY, back.get("inf"));
    assertArrayEquals(raw, (byte[]) back.get("bytes"));
    assertEquals(new Atom("ok"), back.get("atom"));
    assertEquals(TermTuple.of(1L, null, "x"), back.get("tuple"));
    assertEquals(Arrays.asList(true, null, List.of()), back.get("list"));
    // Canonical order: keys sorted by their bytes (all strings: by length, then text).
    assertEquals(
        List.of("big", "inf", "int", "atom", "edge", "list", "bytes", "float", "tuple"),
        new ArrayList<>(back.keySet()));
    assertArrayEquals(Terms.termBytes(map), Terms.termBytes(back));
    // An integer in the int64 range is a Long, whatever type it was given as.
    assertEquals(5L, Terms.fromTerm(Terms.toTerm(BigInteger.valueOf(5))));
    assertEquals(5L, Terms.fromTerm(Terms.toTerm(5)));
    assertNull(Terms.fromTerm(Terms.toTerm(null)));
  }

  record Example(String question, String answer, List<Long> ids) {}

  @Test
  void recordsAreMapsOfTheirComponents() {
    Example ex = new Example("2+2?", "4", List.of(1L, 2L));
    Map<String, Object> map = Map.of("question", "2+2?", "answer", "4", "ids", List.of(1L, 2L));
    assertArrayEquals(Terms.termBytes(map), Terms.termBytes(ex));
    Map<String, Object> bad = new LinkedHashMap<>();
    bad.put("x", new Example("q", "\ud800", List.of()));
    InvalidCheckpoint e = assertThrows(InvalidCheckpoint.class, () -> Terms.toTerm(bad));
    assertEquals("value[\"x\"][\"answer\"]", e.path());
  }

  @Test
  void termMapsHoldStatsErrorsAndArtifacts() {
    TermMap map = Terms.toTermMap(Map.of("b", 2L, "a", 1L), "stats");
    assertEquals("a", map.getEntries(0).getKey().getStringValue());
    Map<Object, Object> back = Terms.fromTerm(map);
    assertEquals(List.of("a", "b"), new ArrayList<>(back.keySet()));
    InvalidCheckpoint e =
        assertThrows(
            InvalidCheckpoint.class, () -> Terms.toTermMap(new ArrayList<>(List.of(1L)), "stats"));
    assertEquals("stats: ArrayList is not a mapping", e.getMessage());
    e =
        assertThrows(
            InvalidCheckpoint.class, () -> Terms.toTermMap(Map.of("k", Double.NaN), "stats"));
    assertEquals("stats[\"k\"]: NaN is not allowed (rule float.nan)", e.getMessage());
    TermMap noValue =
        TermMap.newBuilder()
            .addEntries(TermMapEntry.newBuilder().setKey(Terms.toTerm("k")))
            .build();
    e = assertThrows(InvalidCheckpoint.class, () -> Terms.fromTerm(noValue));
    assertEquals(
        "term.entries[0]: map entry has no value (rule term.map.value_required)", e.getMessage());
  }

  private static Term unsortedMap(Object... keysAndValues) {
    TermMap.Builder map = TermMap.newBuilder();
    for (int i = 0; i < keysAndValues.length; i += 2) {
      map.addEntries(
          TermMapEntry.newBuilder()
              .setKey(Terms.toTerm(keysAndValues[i]))
              .setValue(Terms.toTerm(keysAndValues[i + 1])));
    }
    return Term.newBuilder().setMapValue(map).build();
  }

  @Test
  void canonicalTermSortsMapsAndChecksTheRules() throws Exception {
    Term unsorted = unsortedMap("question", "2+2?", "answer", "4");
    Term sorted = Terms.canonicalTerm(unsorted);
    assertNotEquals(unsorted, sorted);
    assertEquals(Terms.toTerm(Map.of("question", "2+2?", "answer", "4")), sorted);
    Checkpoints.checkTerm(sorted, "x");
    assertThrows(ResumeMismatch.class, () -> Checkpoints.checkTerm(unsorted, "x"));
    // A Term given as a value is put in canonical form too.
    assertEquals(sorted, Terms.toTerm(unsorted));
    assertEquals(Terms.toTerm(List.of(sorted)), Terms.toTerm(List.of(unsorted)));

    Term dup =
        Term.newBuilder()
            .setListValue(TermList.newBuilder().addItems(unsortedMap("a", 1L, "b", 2L, "a", 3L)))
            .build();
    InvalidCheckpoint e = assertThrows(InvalidCheckpoint.class, () -> Terms.canonicalTerm(dup));
    assertEquals(
        "term.list_value.items[0].map_value.entries[2].key: duplicate map key"
            + " (rule term.map.order)",
        e.getMessage());

    Term noKind =
        Term.newBuilder()
            .setTupleValue(TermList.newBuilder().addItems(Term.getDefaultInstance()))
            .build();
    e = assertThrows(InvalidCheckpoint.class, () -> Terms.fromTerm(noKind));
    assertEquals("term.tuple_value.items[0]: term has no kind (rule term.kind)", e.getMessage());

    Term notMinimal =
        Term.newBuilder().setBigintValue(ByteString.copyFrom(new byte[] {0, 0, 1})).build();
    e = assertThrows(InvalidCheckpoint.class, () -> Terms.fromTerm(notMinimal));
    assertEquals(
        "term.bigint_value: big integer is not minimal (rule term.bigint)", e.getMessage());
    Term fits = Term.newBuilder().setBigintValue(ByteString.copyFrom(new byte[] {1})).build();
    e = assertThrows(InvalidCheckpoint.class, () -> Terms.fromTerm(fits));
    assertEquals(
        "term.bigint_value: big integer fits in int64; it must be an int_value (rule term.bigint)",
        e.getMessage());
    Term nan = Term.newBuilder().setFloatValue(Double.NaN).build();
    Term nanInMap =
        Term.newBuilder()
            .setMapValue(
                TermMap.newBuilder()
                    .addEntries(TermMapEntry.newBuilder().setKey(Terms.toTerm("k")).setValue(nan)))
            .build();
    e = assertThrows(InvalidCheckpoint.class, () -> Terms.fromTerm(nanInMap));
    assertEquals(
        "term.map_value.entries[0].value.float_value: NaN is not allowed (rule float.nan)",
        e.getMessage());

    Term deep = Terms.toTerm(nested(24));
    Term deeper = Term.newBuilder().setListValue(TermList.newBuilder().addItems(deep)).build();
    e = assertThrows(InvalidCheckpoint.class, () -> Terms.canonicalTerm(deeper));
    assertEquals("nesting deeper than 24", e.detail());
    assertTrue(e.path().startsWith("term.list_value.items[0].list_value"), e.path());
  }

  @Test
  void unknownFieldsAreNotPartOfTheValue() throws Exception {
    Term plain = Terms.toTerm(List.of("x"));
    byte[] known = plain.toByteArray();
    byte[] withUnknown = Arrays.copyOf(known, known.length + 3);
    withUnknown[known.length] = (byte) 0xf8; // field 31, varint: tag f8 01, value 01
    withUnknown[known.length + 1] = 0x01;
    withUnknown[known.length + 2] = 0x01;
    Term parsed = Term.parseFrom(withUnknown);
    assertNotEquals(plain, parsed);
    assertEquals(plain, Terms.canonicalTerm(parsed));
    assertInstanceOf(List.class, Terms.fromTerm(parsed));
  }
}
