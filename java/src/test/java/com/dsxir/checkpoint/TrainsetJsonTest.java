package com.dsxir.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.dsxir.conformance.v1.Command;
import com.dsxir.conformance.v1.Refusal;
import com.dsxir.conformance.v1.Request;
import com.dsxir.conformance.v1.Response;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.protobuf.ByteString;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/** hashTrainsetJson and hashTrainsetJsonl (FORMAT.md §6.1): the digests and the refusals. */
class TrainsetJsonTest {
  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private static byte[] latin1(String s) {
    return s.getBytes(StandardCharsets.ISO_8859_1);
  }

  private static byte[] json(String text) throws TrainsetJson.InvalidJson {
    return TrainsetJson.hashTrainsetJson(utf8(text));
  }

  private static byte[] jsonl(String text) throws TrainsetJson.InvalidJson {
    return TrainsetJson.hashTrainsetJsonl(utf8(text));
  }

  private static TrainsetJson.InvalidJson jsonError(byte[] text) {
    return assertThrows(
        TrainsetJson.InvalidJson.class,
        () -> TrainsetJson.hashTrainsetJson(text),
        new String(text, StandardCharsets.ISO_8859_1));
  }

  private static TrainsetJson.InvalidJson jsonlError(byte[] text) {
    return assertThrows(
        TrainsetJson.InvalidJson.class,
        () -> TrainsetJson.hashTrainsetJsonl(text),
        new String(text, StandardCharsets.ISO_8859_1));
  }

  private static Map<String, Object> map(Object... pairs) {
    Map<String, Object> out = new LinkedHashMap<>();
    for (int i = 0; i < pairs.length; i += 2) {
      out.put((String) pairs[i], pairs[i + 1]);
    }
    return out;
  }

  @Test
  void valuesMapToTheTermsOfTheRule() throws Exception {
    String text =
        "[null, true, false, 0, -0, 1, -7, 1.0, -0.0, 0.1, 2.5e3, 1E-2,"
            + " \"\", \"x\\u00e9\\n\\\"\\\\\\/\\b\\f\\r\\t\", \"\\ud83d\\ude00\", [], [1, [2]], {},"
            + " {\"b\": 1, \"a\": [null]}, 9223372036854775807, -9223372036854775808,"
            + " 9223372036854775808, -9223372036854775809, 1e-400]";
    List<Object> expected =
        Arrays.asList(
            null,
            true,
            false,
            0L,
            0L,
            1L,
            -7L,
            1.0,
            -0.0,
            0.1,
            2500.0,
            0.01,
            "",
            "x\u00e9\n\"\\/\b\f\r\t",
            "\ud83d\ude00",
            List.of(),
            List.of(1L, List.of(2L)),
            Map.of(),
            map("a", Arrays.asList((Object) null), "b", 1L),
            Long.MAX_VALUE,
            Long.MIN_VALUE,
            new BigInteger("9223372036854775808"),
            new BigInteger("-9223372036854775809"),
            0.0);
    assertArrayEquals(Sessions.hashTrainset(expected), json(text));
  }

  @Test
  void kindsAndOrderChangeTheDigest() throws Exception {
    List<byte[]> one = List.of(json("[1]"), json("[1.0]"), json("[true]"), json("[\"1\"]"));
    for (int i = 0; i < one.size(); i++) {
      for (int j = i + 1; j < one.size(); j++) {
        assertFalse(Arrays.equals(one.get(i), one.get(j)));
      }
    }
    assertFalse(Arrays.equals(json("[0.0]"), json("[-0.0]")));
    assertArrayEquals(json("[0]"), json("[-0]"));
    assertFalse(Arrays.equals(json("[1, 2]"), json("[2, 1]")));
    assertArrayEquals(json("[{\"a\": 1, \"b\": 2}]"), json("[{\"b\": 2, \"a\": 1}]"));
    assertArrayEquals(json("[{\"é\": 1}]"), json("[{\"\\u00e9\": 1}]"));
  }

  @Test
  void floatsAreTheNearestDouble() throws Exception {
    // Halfway between 1 and the next double: rounds to even (1.0).
    assertArrayEquals(
        json("[1.0]"), json("[1.00000000000000011102230246251565404236316680908203125]"));
    assertArrayEquals(Sessions.hashTrainset(List.of(Double.MIN_VALUE)), json("[5e-324]"));
    assertArrayEquals(
        Sessions.hashTrainset(List.of(Double.MAX_VALUE)), json("[1.7976931348623157e308]"));
    assertArrayEquals(Sessions.hashTrainset(List.of(-0.0)), json("[-1e-400]"));
    for (String text : List.of("[1e309]", "[-1e309]", "[1.8e308]", "[1e99999999999999999999]")) {
      TrainsetJson.InvalidJson e = jsonError(utf8(text));
      assertEquals(1, e.offset(), text);
      assertTrue(e.detail().contains("double"), e.getMessage());
    }
  }

  @Test
  void integersAreExact() throws Exception {
    String digits = "1".repeat(TrainsetJson.MAX_INTEGER_DIGITS);
    assertArrayEquals(
        Sessions.hashTrainset(List.of(new BigInteger(digits))), json("[" + digits + "]"));
    assertArrayEquals(
        Sessions.hashTrainset(List.of(new BigInteger("-" + digits))), json("[-" + digits + "]"));
    assertEquals(1, jsonError(utf8("[" + digits + "1]")).offset());
  }

  @Test
  void jsonLinesAreSplitAtNewlines() throws Exception {
    byte[] expected = json("[{\"a\": 1}, [2], \"x\", null]");
    assertArrayEquals(expected, jsonl("{\"a\": 1}\n[2]\n\"x\"\nnull"));
    assertArrayEquals(expected, jsonl("{\"a\": 1}\r\n\r\n  \t\n[2]\r\n \"x\" \n\nnull\n\n"));
    assertArrayEquals(json("[]"), jsonl(""));
    assertArrayEquals(json("[]"), jsonl("\n \n\t\r\n"));
    assertArrayEquals(Sessions.hashTrainset(List.of()), json(" \t\r\n[ ] \n"));
    // A lone "\r" is left once the trailing one goes: not blank, not a value.
    assertEquals(2, jsonlError(utf8("1\n\r\r\n")).line());
  }

  private static String deep(int n, String inner) {
    return "[" + "[".repeat(n) + inner + "]".repeat(n) + "]";
  }

  @Test
  void nestingIsBoundedByTheTermDepth() throws Exception {
    // An example is at depth 1: 23 enclosing arrays put the scalar at 24.
    json(deep(23, "1"));
    json(deep(24, ""));
    assertEquals(25, jsonError(utf8(deep(24, "1"))).offset());
    assertEquals(25, jsonError(utf8(deep(25, ""))).offset());
    json("[" + "{\"k\":".repeat(23) + "1" + "}".repeat(23) + "]");
    TrainsetJson.InvalidJson e =
        jsonError(utf8("[" + "{\"k\":".repeat(24) + "1" + "}".repeat(24) + "]"));
    assertTrue(e.detail().contains("deeper"), e.getMessage());
    // Far deeper input is refused at the limit, not by exhausting the stack.
    assertEquals(25, jsonError(utf8(deep(1_000_000, ""))).offset());
    e = jsonlError(utf8("\n" + "[".repeat(100_000)));
    assertEquals(2, e.line());
    assertEquals(25, e.offset());
  }

  @Test
  void refusalsNameTheByteOffset() {
    Object[][] cases = {
      {"", 0},
      {"  ", 2},
      {"{}", 0},
      {"1", 0},
      {"\"x\"", 0},
      {"[1] x", 4},
      {"[1][2]", 3},
      {"[1,]", 3},
      {"[,1]", 1},
      {"[1 2]", 3},
      {"[01]", 1},
      {"[-01]", 1},
      {"[00]", 1},
      {"[1.]", 1},
      {"[.5]", 1},
      {"[+1]", 1},
      {"[-]", 1},
      {"[1e]", 1},
      {"[1e+]", 1},
      {"[NaN]", 1},
      {"[Infinity]", 1},
      {"[-Infinity]", 1},
      {"[nul]", 1},
      {"[True]", 1},
      {"[1", 2},
      {"[\"abc", 1},
      {"[\"a\u0001\"]", 3},
      {"[\"\\x\"]", 2},
      {"[\"\\u12\"]", 2},
      {"[\"\\u١٢٣٤\"]", 2},
      {"[\"\\ud800\"]", 2},
      {"[\"\\udc00\"]", 2},
      {"[\"\\ud800\\u0041\"]", 2},
      {"[\"\\ud800\\ud800\"]", 2},
      {"[{\"a\":1,\"a\":2}]", 8},
      {"[{\"a\":1,\"\\u0061\":2}]", 8},
      {"[{1:2}]", 2},
      {"[{\"a\" 1}]", 6},
      {"[{\"a\":1,}]", 8},
      {"[\f1]", 1},
      {"[1]\u0000", 3},
      {"\u00ef\u00bb\u00bf[]", 0},
      {"[\"\u00ff\"]", 2},
      {"[\"\u00ed\u00a0\u0080\"]", 2},
      {"[\"\u00c0\u0080\"]", 2},
      {"[\"\u00f4\u0090\u0080\u0080\"]", 2},
      {"[\"\u00e2\u0082\"]", 2},
      {"[1]\u00e9", 3},
    };
    for (Object[] c : cases) {
      // The strings of the table spell bytes: \u0080..\u00ff stand for single bytes.
      String text = (String) c[0];
      byte[] bytes = text.contains("١") ? utf8(text) : latin1(text);
      TrainsetJson.InvalidJson e = jsonError(bytes);
      int offset = (Integer) c[1];
      assertEquals(offset, e.offset(), text + ": " + e.getMessage());
      assertEquals(0, e.line());
      assertTrue(e.getMessage().startsWith("byte " + offset + ": "), e.getMessage());
    }
  }

  @Test
  void jsonLinesRefusalsNameTheLine() {
    Object[][] cases = {
      {"1\n2 3\n", 2, 4},
      {"1\n\n{\"a\":1,\"a\":2}", 3, 10},
      {"[1]\r\n[2]\r\n[", 3, 11},
      {"1\n2\n\u00ef\u00bb\u00bf3", 3, 4},
      {"\u00ef\u00bb\u00bf1", 1, 0},
      {"1\n\"\u00ff\"\n", 2, 3},
      {"1\n1 \r 2\n", 2, 6},
      {"\"a\nb\"", 1, 0},
    };
    for (Object[] c : cases) {
      String text = (String) c[0];
      TrainsetJson.InvalidJson e = jsonlError(latin1(text));
      int line = (Integer) c[1];
      int offset = (Integer) c[2];
      assertEquals(line, e.line(), text + ": " + e.getMessage());
      assertEquals(offset, e.offset(), text + ": " + e.getMessage());
      assertTrue(
          e.getMessage().startsWith("line " + line + ", byte " + offset + ": "), e.getMessage());
    }
  }

  @Test
  void textOverTheSizeLimitIsRefusedBeforeParsing() {
    byte[] text = new byte[Checkpoints.MAX_INPUT_BYTES + 1];
    Arrays.fill(text, (byte) ' ');
    text[0] = '[';
    assertTrue(jsonError(text).detail().contains("limit"));
    assertTrue(jsonlError(text).detail().contains("limit"));
  }

  @Test
  void damagedTextIsAnswerOrRefusal() {
    byte[] base =
        utf8(
            "[{\"q\": \"caf\\u00e9 \\ud83d\\ude00\", \"n\": [1, -2.5e-3, 18446744073709551616,"
                + " null, true]}, \"x\", {\"a\": {\"b\": []}}]");
    byte[] pieces = utf8("[]{}\",:\\u0e-+.\n");
    Random random = new Random(7);
    for (int round = 0; round < 20_000; round++) {
      List<Byte> text = new ArrayList<>();
      for (byte b : base) {
        text.add(b);
      }
      for (int k = 0; k < 1 + random.nextInt(3); k++) {
        int at = random.nextInt(text.size());
        switch (random.nextInt(3)) {
          case 0 -> text.set(at, (byte) random.nextInt(256));
          case 1 -> text.remove(at);
          default -> text.add(at, pieces[random.nextInt(pieces.length)]);
        }
      }
      byte[] bytes = new byte[text.size()];
      for (int i = 0; i < bytes.length; i++) {
        bytes[i] = text.get(i);
      }
      // A digest or an InvalidJson; any other exception fails the test.
      try {
        TrainsetJson.hashTrainsetJson(bytes);
      } catch (TrainsetJson.InvalidJson e) {
        assertTrue(e.offset() >= 0 && e.offset() <= bytes.length);
      }
      try {
        TrainsetJson.hashTrainsetJsonl(bytes);
      } catch (TrainsetJson.InvalidJson e) {
        assertTrue(e.offset() >= 0 && e.offset() <= bytes.length && e.line() >= 1);
      }
    }
  }

  // --- the testee ------------------------------------------------------------------------------

  private record Run(int code, String out, String err) {}

  private static Run testee(String command, byte[] stdin) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code =
        Testee.run(
            new String[] {command},
            new ByteArrayInputStream(stdin),
            out,
            new PrintStream(err, true, StandardCharsets.UTF_8));
    return new Run(
        code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  @Test
  void testeeHashesJsonTextFromStdin() throws Exception {
    String expected = HexFormat.of().formatHex(json("[{\"a\": 1}, 2]")) + "\n";
    Run r = testee("hash-trainset-json", utf8("[{\"a\": 1}, 2]"));
    assertEquals(0, r.code(), r.err());
    assertEquals(expected, r.out());
    r = testee("hash-trainset-jsonl", utf8("{\"a\": 1}\r\n2\n"));
    assertEquals(0, r.code(), r.err());
    assertEquals(expected, r.out());

    r = testee("hash-trainset-json", utf8("[1,]"));
    assertEquals(3, r.code());
    assertEquals("", r.out());
    assertTrue(r.err().startsWith("trainset_json: byte 3: "), r.err());
    assertEquals(r.err().length() - 1, r.err().indexOf('\n'), r.err());
    r = testee("hash-trainset-jsonl", utf8("1\n{\"a\\nb\":1,\"a\\nb\":2}\n"));
    assertEquals(3, r.code());
    assertTrue(r.err().startsWith("trainset_json: line 2, byte 12: "), r.err());
    assertEquals(r.err().length() - 1, r.err().indexOf('\n'), r.err());
  }

  @Test
  void testeeServesJsonText() throws Exception {
    ByteArrayOutputStream requests = new ByteArrayOutputStream();
    frame(Command.COMMAND_HASH_TRAINSET_JSON, utf8("[{\"a\": 1}, 2]")).writeDelimitedTo(requests);
    frame(Command.COMMAND_HASH_TRAINSET_JSONL, utf8("{\"a\": 1}\n2")).writeDelimitedTo(requests);
    frame(Command.COMMAND_HASH_TRAINSET_JSONL, utf8("1\n2 3")).writeDelimitedTo(requests);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    int code =
        Testee.run(
            new String[] {"serve"},
            new ByteArrayInputStream(requests.toByteArray()),
            out,
            new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
    assertEquals(0, code);
    ByteArrayInputStream in = new ByteArrayInputStream(out.toByteArray());
    byte[] digest = utf8(HexFormat.of().formatHex(json("[{\"a\": 1}, 2]")) + "\n");
    assertArrayEquals(digest, Response.parseDelimitedFrom(in).getOutput().toByteArray());
    assertArrayEquals(digest, Response.parseDelimitedFrom(in).getOutput().toByteArray());
    Refusal refusal = Response.parseDelimitedFrom(in).getRefusal();
    assertEquals(3, refusal.getExitCode());
    assertEquals("trainset_json", refusal.getKind());
    assertEquals("line 2, byte 4", refusal.getPath());
    assertEquals(
        "trainset_json: line 2, byte 4: content after the JSON value", refusal.getMessage());
    assertEquals(null, Response.parseDelimitedFrom(in));
  }

  private static Request frame(Command command, byte[] input) {
    return Request.newBuilder().setCommand(command).setInput(ByteString.copyFrom(input)).build();
  }

  // --- the cases shared by every language ----------------------------------------------------

  private static Path casesFile() {
    String override = System.getenv("DSXIR_VECTORS_DIR");
    Path dir = override != null ? Path.of(override) : Path.of("..", "tests", "vectors");
    return dir.resolve("trainset-json").resolve("cases.json");
  }

  /**
   * tests/vectors/trainset-json/cases.json: the digest of every case, or its refusal (for JSON
   * Lines, at the line the case names).
   */
  @TestFactory
  List<DynamicTest> sharedCasesHashAsInEveryLanguage() throws IOException {
    JsonArray cases =
        JsonParser.parseString(Files.readString(casesFile(), StandardCharsets.UTF_8))
            .getAsJsonObject()
            .getAsJsonArray("cases");
    assertTrue(cases.size() > 0, "no cases");
    List<DynamicTest> tests = new ArrayList<>();
    for (JsonElement element : cases) {
      JsonObject c = element.getAsJsonObject();
      String name = c.get("name").getAsString();
      tests.add(DynamicTest.dynamicTest(name, () -> checkCase(name, c)));
    }
    return tests;
  }

  private static void checkCase(String name, JsonObject c) throws Exception {
    byte[] text;
    if (c.has("text") == c.has("text_hex")) {
      fail(name + ": exactly one of text and text_hex");
      return;
    }
    text =
        c.has("text")
            ? utf8(c.get("text").getAsString())
            : HexFormat.of().parseHex(c.get("text_hex").getAsString());
    boolean lines =
        switch (c.get("format").getAsString()) {
          case "json" -> false;
          case "jsonl" -> true;
          default -> throw new AssertionError(name + ": format " + c.get("format"));
        };
    if (c.has("error") && c.get("error").getAsBoolean()) {
      TrainsetJson.InvalidJson e = lines ? jsonlError(text) : jsonError(text);
      if (c.has("line")) {
        assertEquals(c.get("line").getAsInt(), e.line(), name + ": " + e.getMessage());
      }
      return;
    }
    byte[] digest =
        lines ? TrainsetJson.hashTrainsetJsonl(text) : TrainsetJson.hashTrainsetJson(text);
    assertEquals(c.get("digest").getAsString(), HexFormat.of().formatHex(digest), name);
  }
}
