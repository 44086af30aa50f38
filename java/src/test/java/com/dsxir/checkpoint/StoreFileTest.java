package com.dsxir.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.dsxir.optimizer_session.v1.Checkpoint;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * Store files (docs/store-file.md): the vectors of tests/vectors/store/manifest.jsonl, bit flips,
 * truncations and writing. The vector directory is ../tests/vectors, or DSXIR_VECTORS_DIR.
 */
class StoreFileTest {
  private static Path dir() {
    String override = System.getenv("DSXIR_VECTORS_DIR");
    return override != null ? Path.of(override) : Path.of("..", "tests", "vectors");
  }

  private static List<JsonObject> manifest() throws IOException {
    List<JsonObject> vectors = new ArrayList<>();
    for (String line :
        Files.readAllLines(dir().resolve("store/manifest.jsonl"), StandardCharsets.UTF_8)) {
      if (!line.isEmpty()) {
        vectors.add(JsonParser.parseString(line).getAsJsonObject());
      }
    }
    return vectors;
  }

  private static byte[] read(String rel) throws IOException {
    return Files.readAllBytes(dir().resolve(rel));
  }

  private static String get(JsonObject vector, String key) {
    return vector.get(key).getAsString();
  }

  @Test
  void theManifestListsEveryVerdict() throws IOException {
    List<JsonObject> vectors = manifest();
    long ok = vectors.stream().filter(v -> get(v, "verdict").equals("ok")).count();
    long damaged = vectors.stream().filter(v -> get(v, "verdict").equals("damaged")).count();
    long refused =
        vectors.stream().filter(v -> get(v, "verdict").equals("checkpoint_refused")).count();
    long deltaRefused =
        vectors.stream().filter(v -> get(v, "verdict").equals("delta_refused")).count();
    assertTrue(ok >= 10 && damaged >= 20 && refused >= 3 && deltaRefused >= 2);
    assertEquals(vectors.size(), ok + damaged + refused + deltaRefused);
    Set<String> kinds = new HashSet<>();
    for (JsonObject v : vectors) {
      if (get(v, "verdict").equals("damaged")) {
        kinds.add(get(v, "kind"));
      }
    }
    Set<String> every = new HashSet<>();
    for (CorruptStoreFile.Kind kind : CorruptStoreFile.Kind.values()) {
      every.add(kind.id());
    }
    assertEquals(every, kinds);
  }

  @TestFactory
  List<DynamicTest> everyVectorGetsItsVerdict() throws IOException {
    List<DynamicTest> tests = new ArrayList<>();
    for (JsonObject vector : manifest()) {
      tests.add(
          DynamicTest.dynamicTest(
              get(vector, "name") + ": " + get(vector, "verdict"), () -> check(vector)));
    }
    return tests;
  }

  private static void check(JsonObject vector) throws Exception {
    byte[] data = read(get(vector, "file"));
    switch (get(vector, "verdict")) {
      case "ok":
        StoreFile file = StoreFile.read(data);
        assertEquals(get(vector, "generation"), Long.toUnsignedString(file.generation()));
        assertArrayEquals(read(get(vector, "checkpoint")), Checkpoints.encode(file.checkpoint()));
        List<int[]> records = records(data);
        boolean appendable = ByteBuffer.wrap(data).getShort(10) == 1;
        if (records.isEmpty()) {
          assertEquals(0, file.records());
          assertArrayEquals(
              data, StoreFile.write(file.generation(), file.checkpoint(), appendable));
          checkSummary(file, data, StoreFile.HEADER_SIZE, ByteBuffer.wrap(data).getInt(20));
        } else {
          assertTrue(appendable);
          int[] last = records.get(records.size() - 1);
          assertEquals(records.size(), file.records());
          assertEquals(last[END], file.end());
          checkSummary(file, data, last[SUMMARY], last[DELTA] - last[SUMMARY]);
          // The snapshot a compaction writes reads as the same generation and checkpoint.
          StoreFile compacted =
              StoreFile.read(StoreFile.write(file.generation(), file.checkpoint(), true));
          assertEquals(file.generation(), compacted.generation());
          assertEquals(file.checkpoint(), compacted.checkpoint());
          assertEquals(file.summary(), compacted.summary());
        }
        break;
      case "damaged":
        CorruptStoreFile damaged = assertThrows(CorruptStoreFile.class, () -> StoreFile.read(data));
        assertEquals(get(vector, "kind"), damaged.kind().id(), damaged.getMessage());
        assertTrue(
            damaged.getMessage().startsWith("store_file: " + get(vector, "kind") + ": "),
            damaged.getMessage());
        break;
      case "checkpoint_refused":
        ResumeMismatch refused = assertThrows(ResumeMismatch.class, () -> StoreFile.read(data));
        assertEquals(ResumeMismatch.CHECKPOINT_SHAPE, refused.reason());
        assertEquals(get(vector, "field"), refused.field(), refused.getMessage());
        if (vector.has("rule")) {
          assertEquals(get(vector, "rule"), refused.rule(), refused.getMessage());
        }
        assertTrue(Rules.ALL.contains(refused.rule()), refused.getMessage());
        break;
      case "delta_refused":
        InvalidDelta bad = assertThrows(InvalidDelta.class, () -> StoreFile.read(data));
        assertEquals(get(vector, "field"), bad.field(), bad.getMessage());
        assertEquals(get(vector, "rule"), bad.rule(), bad.getMessage());
        assertTrue(
            bad.getMessage().startsWith("delta_shape: " + get(vector, "field") + ": "),
            bad.getMessage());
        assertTrue(bad.getMessage().endsWith(" (rule " + get(vector, "rule") + ")"));
        break;
      default:
        fail("unknown verdict " + get(vector, "verdict"));
    }
  }

  private static void checkSummary(StoreFile file, byte[] data, int offset, int length) {
    String text = new String(data, offset, length, StandardCharsets.UTF_8);
    JsonObject json = JsonParser.parseString(text).getAsJsonObject();
    StoreFile.Summary s = file.summary();
    assertEquals(json.get("session_id").getAsString(), s.sessionId());
    assertEquals(json.get("optimizer").getAsString(), s.optimizer());
    assertEquals(json.get("status").getAsString(), s.status());
    assertEquals(count(json, "attempts"), Long.toUnsignedString(s.attempts()));
    assertEquals(count(json, "completed"), Long.toUnsignedString(s.completed()));
    assertEquals(count(json, "errors"), Long.toUnsignedString(s.errors()));
    assertEquals(json.get("trials").getAsLong(), s.trials());
    assertEquals(json.get("best_score").isJsonNull(), s.bestScore().isEmpty());
    assertEquals(json.get("best_trial_idx").isJsonNull(), s.bestTrialIdx().isEmpty());
    JsonArray stamp = json.getAsJsonArray("updated_at");
    assertEquals(stamp.get(0).getAsLong(), s.updatedAtSeconds());
    assertEquals(stamp.get(1).getAsInt(), s.updatedAtNanos());
  }

  private static final int START = 0;
  private static final int GENERATION = 1;
  private static final int SUMMARY = 2;
  private static final int DELTA = 3;
  private static final int END = 4;

  /**
   * The whole records after the snapshot, walked without any check: {start, generation (low 31
   * bits), summary start, delta start, end} each.
   */
  private static List<int[]> records(byte[] data) {
    ByteBuffer buffer = ByteBuffer.wrap(data);
    int at = StoreFile.HEADER_SIZE + buffer.getInt(20) + (int) buffer.getLong(24);
    List<int[]> out = new ArrayList<>();
    while (data.length - at >= StoreFile.RECORD_HEADER_SIZE) {
      int summary = at + StoreFile.RECORD_HEADER_SIZE;
      int delta = summary + buffer.getInt(at + 12);
      int end = delta + buffer.getInt(at + 16);
      if (end > data.length) {
        break;
      }
      out.add(new int[] {at, (int) buffer.getLong(at + 4), summary, delta, end});
      at = end;
    }
    return out;
  }

  private static String count(JsonObject json, String key) {
    return json.get(key).getAsBigInteger().toString();
  }

  private static byte[] good() throws IOException {
    return read("store/running_trials.dsxckpt");
  }

  @Test
  void crc32cCheckValue() {
    byte[] digits = "123456789".getBytes(StandardCharsets.US_ASCII);
    assertEquals(0xE3069283, StoreFile.crc32c(digits, 0, digits.length));
    assertEquals(0, StoreFile.crc32c(new byte[0], 0, 0));
  }

  @Test
  void everyFlippedBitIsRefusedAsDamage() throws IOException {
    byte[] good = good();
    for (int i = 0; i < good.length; i++) {
      for (int bit = 0; bit < 8; bit++) {
        byte[] damaged = good.clone();
        damaged[i] ^= (byte) (1 << bit);
        assertThrows(CorruptStoreFile.class, () -> StoreFile.read(damaged), i + "/" + bit);
      }
    }
  }

  @Test
  void everyTruncationIsRefusedAsTruncated() throws IOException {
    byte[] good = good();
    for (int n = 0; n < good.length; n++) {
      byte[] cut = Arrays.copyOf(good, n);
      CorruptStoreFile e = assertThrows(CorruptStoreFile.class, () -> StoreFile.read(cut));
      assertEquals(CorruptStoreFile.Kind.TRUNCATED, e.kind(), n + " bytes");
    }
  }

  @Test
  void writeRefusesAnInvalidCheckpointAndASummaryOverTheLimit() throws Exception {
    Checkpoint cp = StoreFile.read(good()).checkpoint();
    long completed = cp.getProgress().getCompleted();
    Checkpoint invalid =
        cp.toBuilder()
            .setProgress(cp.getProgress().toBuilder().setCompleted(completed + 1))
            .build();
    ResumeMismatch e = assertThrows(ResumeMismatch.class, () -> StoreFile.write(1, invalid));
    assertEquals("progress.completed", e.field());
    assertThrows(ResumeMismatch.class, () -> StoreFile.encodeSummary(invalid));
    Checkpoint huge = cp.toBuilder().setOptimizer("x".repeat(StoreFile.MAX_SUMMARY_BYTES)).build();
    assertThrows(IllegalArgumentException.class, () -> StoreFile.write(1, huge));
    Checkpoint large =
        cp.toBuilder().setOptimizer("x".repeat(StoreFile.MAX_SUMMARY_BYTES - 300)).build();
    assertEquals(large, StoreFile.read(StoreFile.write(1, large)).checkpoint());
  }

  @Test
  void writeThenReadAtEveryGeneration() throws Exception {
    Checkpoint cp = StoreFile.read(good()).checkpoint();
    for (long generation : new long[] {0, 1, Long.MAX_VALUE, Long.MIN_VALUE, -1}) {
      StoreFile file = StoreFile.read(StoreFile.write(generation, cp));
      assertEquals(generation, file.generation());
      assertEquals(cp, file.checkpoint());
    }
  }

  @Test
  void jsonStringsAreEscapedAsPythonDoes() {
    StringBuilder out = new StringBuilder();
    StoreFile.appendJsonString(out, "a\"\\/\u0000\u001f\b\t\n\f\r\u007f\u2028é😀");
    assertEquals("\"a\\\"\\\\/\\u0000\\u001f\\b\\t\\n\\f\\r\u007f\u2028é😀\"", out.toString());
  }
}
