package com.dsxir.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.dsxir.optimizer_session.v1.Checkpoint;
import com.dsxir.optimizer_session.v1.CheckpointDelta;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * The delta vectors of tests/vectors/delta/manifest.json (FORMAT.md §13): each delta applied to
 * its base gives the result's bytes, or the refusal's stage, rule and field. The directory is
 * ../tests/vectors/delta, or delta/ in the one named by the DSXIR_VECTORS_DIR environment
 * variable.
 */
class DeltaVectorsTest {
  private static Path dir() {
    String override = System.getenv("DSXIR_VECTORS_DIR");
    return (override != null ? Path.of(override) : Path.of("..", "tests", "vectors"))
        .resolve("delta");
  }

  private static JsonArray cases() throws IOException {
    JsonObject root =
        JsonParser.parseString(
                Files.readString(dir().resolve("manifest.json"), StandardCharsets.UTF_8))
            .getAsJsonObject();
    JsonArray cases = root.getAsJsonArray("cases");
    assertTrue(cases != null && cases.size() > 0, "the delta manifest lists no cases");
    return cases;
  }

  private static byte[] read(JsonObject c, String key) throws IOException {
    return Files.readAllBytes(dir().resolve(c.get(key).getAsString()));
  }

  @TestFactory
  List<DynamicTest> deltaVectors() throws IOException {
    List<DynamicTest> tests = new ArrayList<>();
    for (JsonElement element : cases()) {
      JsonObject c = element.getAsJsonObject();
      tests.add(DynamicTest.dynamicTest(c.get("name").getAsString(), () -> check(c)));
    }
    return tests;
  }

  private static void check(JsonObject c) throws Exception {
    byte[] baseBytes = read(c, "base");
    byte[] deltaBytes = read(c, "delta");
    Checkpoint base = Checkpoints.decode(baseBytes);
    assertArrayEquals(baseBytes, Checkpoints.encode(base), "the base is canonical");
    JsonObject refused = c.has("refused") ? c.getAsJsonObject("refused") : null;
    assertTrue((refused != null) ^ c.has("result"), "a case has either a result or a refusal");
    String stage = refused == null ? null : refused.get("stage").getAsString();
    if ("read".equals(stage)) {
      InvalidDelta e = assertThrows(InvalidDelta.class, () -> Deltas.decode(deltaBytes));
      assertEquals(refused.get("rule").getAsString(), e.rule(), e.getMessage());
      assertEquals(refused.get("field").getAsString(), e.field(), e.getMessage());
      assertTrue(e.getMessage().startsWith("delta_shape: " + e.field() + ": "), e.getMessage());
      assertTrue(e.getMessage().endsWith(" (rule " + e.rule() + ")"), e.getMessage());
      e = assertThrows(InvalidDelta.class, () -> Deltas.apply(baseBytes, deltaBytes));
      assertEquals(refused.get("rule").getAsString(), e.rule());
      return;
    }
    CheckpointDelta delta = Deltas.decode(deltaBytes);
    assertArrayEquals(deltaBytes, Deltas.encode(delta), "the delta writes back to its bytes");
    assertArrayEquals(deltaBytes, Deltas.reencode(deltaBytes));
    if (refused == null) {
      byte[] result = read(c, "result");
      assertArrayEquals(result, Deltas.apply(baseBytes, deltaBytes));
      Checkpoint applied = Deltas.apply(base, delta);
      assertArrayEquals(result, Checkpoints.encode(applied));
      assertEquals(Checkpoints.decode(result), applied);
      return;
    }
    String rule = refused.get("rule").getAsString();
    String field = refused.get("field").getAsString();
    if (stage.equals("apply")) {
      InvalidDelta e = assertThrows(InvalidDelta.class, () -> Deltas.apply(base, delta));
      assertEquals(rule, e.rule(), e.getMessage());
      assertEquals(field, e.field(), e.getMessage());
      e = assertThrows(InvalidDelta.class, () -> Deltas.apply(baseBytes, deltaBytes));
      assertEquals(rule, e.rule(), e.getMessage());
      assertEquals(field, e.field(), e.getMessage());
    } else {
      assertEquals("result", stage);
      ResumeMismatch e = assertThrows(ResumeMismatch.class, () -> Deltas.apply(base, delta));
      assertEquals(rule, e.rule(), e.getMessage());
      assertEquals(field, e.field(), e.getMessage());
      assertEquals(ResumeMismatch.CHECKPOINT_SHAPE, e.reason());
      e = assertThrows(ResumeMismatch.class, () -> Deltas.apply(baseBytes, deltaBytes));
      assertEquals(rule, e.rule(), e.getMessage());
      assertEquals(field, e.field(), e.getMessage());
    }
  }

  /** Every delta rule has a vector, and every stage is covered. */
  @Test
  void everyDeltaRuleHasAVector() throws IOException {
    Set<String> rules = new HashSet<>();
    Set<String> stages = new HashSet<>();
    boolean accepted = false;
    for (JsonElement element : cases()) {
      JsonObject c = element.getAsJsonObject();
      if (c.has("refused")) {
        rules.add(c.getAsJsonObject("refused").get("rule").getAsString());
        stages.add(c.getAsJsonObject("refused").get("stage").getAsString());
      } else {
        accepted = true;
      }
    }
    assertTrue(accepted, "no accepted delta");
    assertTrue(rules.containsAll(DeltaRules.ALL), "rules without a vector: " + rules);
    assertEquals(Set.of("read", "apply", "result"), stages);
    assertFalse(rules.isEmpty());
  }
}
