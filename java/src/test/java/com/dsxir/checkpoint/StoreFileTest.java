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
import java.util.List;
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
    assertTrue(ok >= 10 && damaged >= 20 && refused >= 3);
    assertEquals(vectors.size(), ok + damaged + refused);
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
        assertArrayEquals(data, StoreFile.write(file.generation(), file.checkpoint()));
        checkSummary(file, data);
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
      default:
        fail("unknown verdict " + get(vector, "verdict"));
    }
  }

  private static void checkSummary(StoreFile file, byte[] data) {
    int length = ByteBuffer.wrap(data).getInt(20);
    String text = new String(data, StoreFile.HEADER_SIZE, length, StandardCharsets.UTF_8);
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
