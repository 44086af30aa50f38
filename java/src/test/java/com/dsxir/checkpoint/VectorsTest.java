package com.dsxir.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.dsxir.optimizer_session.v1.Checkpoint;
import com.dsxir.optimizer_session.v1.OptionEntry;
import com.dsxir.optimizer_session.v1.Term;
import com.dsxir.optimizer_session.v1.TermMap;
import com.dsxir.optimizer_session.v1.TrialLogEntry;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * The golden vectors of tests/vectors/manifest.json (FORMAT.md §11). The directory is
 * ../tests/vectors, or the one named by the DSXIR_VECTORS_DIR environment variable.
 */
class VectorsTest {
  private static Path dir() {
    String override = System.getenv("DSXIR_VECTORS_DIR");
    return override != null ? Path.of(override) : Path.of("..", "tests", "vectors");
  }

  private static JsonArray list(String kind) throws IOException {
    Path manifest = dir().resolve("manifest.json");
    JsonObject root =
        JsonParser.parseString(Files.readString(manifest, StandardCharsets.UTF_8))
            .getAsJsonObject();
    JsonArray items = root.getAsJsonArray(kind);
    assertTrue(items != null && items.size() > 0, "manifest lists no " + kind + " vectors");
    return items;
  }

  private static byte[] read(JsonObject vector, String key) throws IOException {
    return Files.readAllBytes(dir().resolve(vector.get(key).getAsString()));
  }

  private interface Check {
    void run(JsonObject vector) throws Exception;
  }

  private static List<DynamicTest> each(String kind, Check check) throws IOException {
    List<DynamicTest> tests = new ArrayList<>();
    for (JsonElement element : list(kind)) {
      JsonObject vector = element.getAsJsonObject();
      String name = kind + "/" + vector.get("name").getAsString();
      tests.add(DynamicTest.dynamicTest(name, () -> check.run(vector)));
    }
    return tests;
  }

  @TestFactory
  List<DynamicTest> validVectorsReencodeIdentically() throws IOException {
    return each(
        "valid",
        vector -> {
          byte[] bytes = read(vector, "binpb");
          assertArrayEquals(bytes, Checkpoints.encode(Checkpoints.decode(bytes)));
          assertArrayEquals(bytes, Checkpoints.reencode(bytes));
        });
  }

  /**
   * tests/vectors/canonicalize: bytes in another protobuf encoding (with or without a trailer) that
   * only the explicit rewrite accepts; decode refuses every non-canonical one.
   */
  @TestFactory
  List<DynamicTest> canonicalizeVectorsAreRewrittenAndOnlyThere() throws IOException {
    return each(
        "canonicalize",
        vector -> {
          byte[] input = read(vector, "input");
          byte[] canonical = read(vector, "canonical");
          assertArrayEquals(canonical, Checkpoints.canonicalize(input));
          assertArrayEquals(canonical, Checkpoints.reencode(canonical));
          if (!Arrays.equals(input, canonical)) {
            assertThrows(ResumeMismatch.class, () -> Checkpoints.decode(input));
          }
        });
  }

  @TestFactory
  List<DynamicTest> unknownFieldVectorsAreKept() throws IOException {
    return each(
        "unknown",
        vector -> {
          byte[] bytes = read(vector, "binpb");
          byte[] knownOnly = read(vector, "known_only");
          assertFalse(Arrays.equals(bytes, knownOnly), "vector has no unknown fields");
          Checkpoint cp = Checkpoints.decode(bytes);
          // protobuf-java keeps unknown fields: the newer writer's bytes come back unchanged.
          assertArrayEquals(bytes, Checkpoints.encode(cp));
          assertArrayEquals(bytes, Checkpoints.reencode(bytes));
          assertArrayEquals(knownOnly, Checkpoints.encode(Checkpoints.decode(knownOnly)));
        });
  }

  @TestFactory
  List<DynamicTest> invalidVectorsAreRefusedWithTheirFieldAndRule() throws IOException {
    return each(
        "invalid",
        vector -> {
          byte[] bytes = read(vector, "binpb");
          String field = vector.get("field").getAsString();
          String rule = vector.get("rule").getAsString();
          assertTrue(Rules.ALL.contains(rule), "not a rule id: " + rule);
          ResumeMismatch e = assertThrows(ResumeMismatch.class, () -> Checkpoints.decode(bytes));
          assertEquals("checkpoint_shape", e.reason());
          assertEquals(field, e.field(), e.getMessage());
          assertEquals(rule, e.rule(), e.getMessage());
          assertEquals(
              "checkpoint_shape: " + field + ": " + e.detail() + " (rule " + rule + ")",
              e.getMessage());
          e = assertThrows(ResumeMismatch.class, () -> Checkpoints.reencode(bytes));
          assertEquals(field, e.field(), e.getMessage());
          assertEquals(rule, e.rule(), e.getMessage());
        });
  }

  /**
   * tests/vectors/trainset: one Term list per vector (map entries in any order), and the digest
   * Python's hash_trainset gives for its items.
   */
  @TestFactory
  List<DynamicTest> trainsetVectorsHashAsPythonDoes() throws IOException {
    return each(
        "trainset",
        vector -> {
          byte[] input = read(vector, "input");
          String expected = vector.get("sha256").getAsString();
          HexFormat hex = HexFormat.of();
          assertEquals(expected, hex.formatHex(Sessions.hashTrainsetInput(input)));
          List<Term> items = Term.parseFrom(input).getListValue().getItemsList();
          assertEquals(expected, hex.formatHex(Sessions.hashTrainsetTerms(items)));
          // Through Java values and back.
          List<Object> examples = new ArrayList<>();
          for (Term item : items) {
            examples.add(Terms.fromTerm(item));
          }
          assertEquals(expected, hex.formatHex(Sessions.hashTrainset(examples)));
        });
  }

  /**
   * Every Term of every valid vector comes back from its Java value with the same canonical bytes.
   */
  @TestFactory
  List<DynamicTest> termsOfValidVectorsRoundTrip() throws IOException {
    return each(
        "valid",
        vector -> {
          Checkpoint cp = Checkpoints.decode(read(vector, "binpb"));
          List<Term> terms = new ArrayList<>();
          for (OptionEntry option : cp.getOptimizerOptsList()) {
            terms.add(option.getValue());
          }
          if (cp.hasTerminalReason()) {
            terms.add(cp.getTerminalReason());
          }
          List<TermMap> maps = new ArrayList<>();
          for (TrialLogEntry entry : cp.getProgress().getTrialLogList()) {
            if (entry.hasStats()) {
              maps.add(entry.getStats());
            }
            if (entry.hasError()) {
              maps.add(entry.getError());
            }
          }
          if (cp.hasBestProgramArtifact()) {
            maps.add(cp.getBestProgramArtifact());
          }
          for (Term term : terms) {
            assertArrayEquals(Checkpoints.termBytes(term), Terms.termBytes(Terms.fromTerm(term)));
            assertEquals(term, Terms.canonicalTerm(term));
          }
          for (TermMap map : maps) {
            assertEquals(map, Terms.toTermMap(Terms.fromTerm(map)));
          }
        });
  }

  /** The vectors flagged protobuf_level are refused by the grammar or the trailer checks. */
  @TestFactory
  List<DynamicTest> protobufLevelVectorsAreRefusedByTheGrammar() throws IOException {
    List<DynamicTest> tests = new ArrayList<>();
    for (JsonElement element : list("invalid")) {
      JsonObject vector = element.getAsJsonObject();
      if (!vector.get("protobuf_level").getAsBoolean()) {
        continue;
      }
      String name = "protobuf_level/" + vector.get("name").getAsString();
      tests.add(
          DynamicTest.dynamicTest(
              name,
              () -> {
                byte[] bytes = read(vector, "binpb");
                ResumeMismatch e =
                    assertThrows(ResumeMismatch.class, () -> Checkpoints.decode(bytes));
                assertTrue(
                    e.rule().startsWith("wire.") || e.rule().startsWith("input."), e.getMessage());
              }));
    }
    assertFalse(tests.isEmpty(), "manifest flags no protobuf_level vector");
    return tests;
  }

  /**
   * Every prefix and every single-bit flip of every valid vector is refused (FORMAT.md §2.1).
   */
  @TestFactory
  List<DynamicTest> prefixesAndBitFlipsOfValidVectorsAreRefused() throws IOException {
    return each(
        "valid",
        vector -> {
          byte[] bytes = read(vector, "binpb");
          for (int k = 0; k < bytes.length; k++) {
            byte[] prefix = Arrays.copyOf(bytes, k);
            assertThrows(ResumeMismatch.class, () -> Checkpoints.decode(prefix), "prefix " + k);
          }
          for (int i = 0; i < bytes.length; i++) {
            for (int bit = 0; bit < 8; bit++) {
              byte[] flipped = bytes.clone();
              flipped[i] ^= (byte) (1 << bit);
              ResumeMismatch e =
                  assertThrows(ResumeMismatch.class, () -> Checkpoints.decode(flipped));
              assertEquals("<input>", e.field());
            }
          }
        });
  }
}
