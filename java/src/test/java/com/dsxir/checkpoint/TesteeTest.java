package com.dsxir.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.dsxir.conformance.v1.Command;
import com.dsxir.conformance.v1.Refusal;
import com.dsxir.conformance.v1.Request;
import com.dsxir.conformance.v1.Response;
import com.google.protobuf.ByteString;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The conformance testee: exit codes, refusal lines, serve framing. */
class TesteeTest {
  private static final class Result {
    int code;
    byte[] out;
    String err;
  }

  private static Result run(byte[] stdin, String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    Result r = new Result();
    r.code =
        Testee.run(
            args,
            new ByteArrayInputStream(stdin),
            out,
            new PrintStream(err, true, StandardCharsets.UTF_8));
    r.out = out.toByteArray();
    r.err = err.toString(StandardCharsets.UTF_8);
    return r;
  }

  private static byte[] request(Command command, byte[] input) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    Request.newBuilder()
        .setCommand(command)
        .setInput(ByteString.copyFrom(input))
        .build()
        .writeDelimitedTo(out);
    return out.toByteArray();
  }

  private static List<Response> responses(byte[] out) throws IOException {
    InputStream in = new ByteArrayInputStream(out);
    List<Response> all = new ArrayList<>();
    for (Response r = Response.parseDelimitedFrom(in); r != null; r = Response.parseDelimitedFrom(in)) {
      all.add(r);
    }
    return all;
  }

  @Test
  void reencodeWritesCanonicalBytes() {
    byte[] bytes = Checkpoints.encode(CheckpointsTest.base());
    Result r = run(bytes, "reencode");
    assertEquals(0, r.code, r.err);
    assertArrayEquals(bytes, r.out);
    assertEquals("", r.err);
  }

  @Test
  void refusalIsOneLineAndExit3() {
    Result r = run(new byte[] {(byte) 0xff, (byte) 0xff}, "reencode");
    assertEquals(3, r.code);
    assertEquals(0, r.out.length);
    assertTrue(r.err.startsWith("checkpoint_shape: <input>: "), r.err);
    assertTrue(r.err.endsWith(" (rule input.trailer)\n"), r.err);
    assertTrue(r.err.indexOf('\n') == r.err.length() - 1, r.err);

    r =
        run(
            Grammar.withTrailer(
                CheckpointsTest.base().toBuilder().setStatusValue(0).build().toByteArray()),
            "reencode");
    assertEquals(3, r.code);
    assertTrue(r.err.startsWith("checkpoint_shape: status: "), r.err);
    assertTrue(r.err.endsWith(" (rule status.known)\n"), r.err);
  }

  @Test
  void usageErrorsExit2() {
    for (String[] args :
        new String[][] {{}, {"hash-trainset", "extra"}, {"nonsense"}, {"reencode", "extra"}}) {
      Result r = run(new byte[0], args);
      assertEquals(2, r.code, String.join(" ", args));
      assertFalse(r.err.isEmpty());
    }
  }

  @Test
  void serveAnswersEachRequestInOrder() throws IOException {
    byte[] bytes = Checkpoints.encode(CheckpointsTest.base());
    ByteArrayOutputStream in = new ByteArrayOutputStream();
    in.writeBytes(request(Command.COMMAND_REENCODE, bytes));
    in.writeBytes(
        request(
            Command.COMMAND_REENCODE, Grammar.withTrailer(new byte[] {0x12, 0x02, (byte) 0xc3, 0x28})));
    in.writeBytes(request(Command.COMMAND_REENCODE, Grammar.withTrailer(new byte[0])));
    in.writeBytes(request(Command.COMMAND_REENCODE, bytes));
    Result r = run(in.toByteArray(), "serve");
    assertEquals(0, r.code, r.err);

    List<Response> answers = responses(r.out);
    assertEquals(4, answers.size());
    assertArrayEquals(bytes, answers.get(0).getOutput().toByteArray());
    Refusal refusal = answers.get(1).getRefusal();
    assertEquals(3, refusal.getExitCode());
    assertEquals("checkpoint_shape", refusal.getKind());
    assertEquals("session_id", refusal.getPath());
    assertEquals("wire.utf8", refusal.getRule());
    assertTrue(refusal.getMessage().startsWith("checkpoint_shape: session_id: "), refusal.getMessage());
    refusal = answers.get(2).getRefusal();
    assertEquals("format", refusal.getPath());
    assertEquals("format.required", refusal.getRule());
    assertArrayEquals(bytes, answers.get(3).getOutput().toByteArray());
  }

  /** Python: hash_trainset([{"q": "a"}]). */
  private static final String QA_DIGEST =
      "ab242a4bf28fd26ffad3f20c89a0e65384b13b1e319b4e432bc8b5f103e91668";

  private static byte[] qaTrainset() {
    return Terms.termBytes(List.of(Map.of("q", "a")));
  }

  @Test
  void hashTrainsetWritesTheDigestLine() {
    Result r = run(qaTrainset(), "hash-trainset");
    assertEquals(0, r.code, r.err);
    assertEquals(QA_DIGEST + "\n", new String(r.out, StandardCharsets.US_ASCII));
    assertEquals("", r.err);

    r = run(Terms.termBytes(Map.of("q", "a")), "hash-trainset");
    assertEquals(3, r.code);
    assertEquals(0, r.out.length);
    assertTrue(r.err.startsWith("checkpoint_shape: <input>: "), r.err);

    r = run(new byte[] {0x4a, 0x05, 0x0a, 0x03, 0x29, 0x00, 0x00}, "hash-trainset");
    assertEquals(3, r.code);
    assertTrue(r.err.startsWith("checkpoint_shape: <input>: "), r.err);

    // [1, NaN]: the item's path.
    byte[] nan = {
      0x4a, 0x0f, 0x0a, 0x02, 0x18, 0x02, 0x0a, 0x09, 0x29, 0, 0, 0, 0, 0, 0, (byte) 0xf8, 0x7f
    };
    r = run(nan, "hash-trainset");
    assertEquals(3, r.code);
    assertEquals(
        "checkpoint_shape: items[1].float_value: NaN is not allowed (rule float.nan)\n", r.err);
  }

  @Test
  void serveHashesTrainsets() throws IOException {
    ByteArrayOutputStream in = new ByteArrayOutputStream();
    in.writeBytes(request(Command.COMMAND_HASH_TRAINSET, qaTrainset()));
    in.writeBytes(request(Command.COMMAND_HASH_TRAINSET, new byte[0]));
    in.writeBytes(request(Command.COMMAND_HASH_TRAINSET_JSON, "[{\"q\": \"a\"}]".getBytes(StandardCharsets.UTF_8)));
    in.writeBytes(request(Command.COMMAND_HASH_TRAINSET_JSONL, "{\"q\": \"a\"}\n[1,]\n".getBytes(StandardCharsets.UTF_8)));
    in.writeBytes(request(Command.COMMAND_HASH_TRAINSET_JSON, "[1] x".getBytes(StandardCharsets.UTF_8)));
    Result r = run(in.toByteArray(), "serve");
    assertEquals(0, r.code, r.err);
    List<Response> answers = responses(r.out);
    assertEquals(5, answers.size());
    assertEquals(QA_DIGEST + "\n", answers.get(0).getOutput().toStringUtf8());
    Refusal refusal = answers.get(1).getRefusal();
    assertEquals("<input>", refusal.getPath());
    assertEquals("input.malformed", refusal.getRule());
    assertEquals(QA_DIGEST + "\n", answers.get(2).getOutput().toStringUtf8());
    refusal = answers.get(3).getRefusal();
    assertEquals(3, refusal.getExitCode());
    assertEquals("trainset_json", refusal.getKind());
    assertTrue(refusal.getPath().startsWith("line 2, byte "), refusal.getPath());
    assertEquals("", refusal.getRule());
    refusal = answers.get(4).getRefusal();
    assertTrue(refusal.getPath().startsWith("byte "), refusal.getPath());
  }

  @Test
  void serveRefusesUnknownCommandsAndStopsOnBrokenFraming() throws IOException {
    ByteArrayOutputStream in = new ByteArrayOutputStream();
    in.writeBytes(request(Command.COMMAND_UNSPECIFIED, new byte[] {0x4a, 0x00}));
    Request.newBuilder().setCommandValue(99).build().writeDelimitedTo(in);
    in.writeBytes(request(Command.COMMAND_READ_STORE_FILE, new byte[] {1, 2, 3}));
    Result r = run(in.toByteArray(), "serve");
    assertEquals(0, r.code, r.err);
    List<Response> answers = responses(r.out);
    assertEquals(3, answers.size());
    for (int i = 0; i < 2; i++) {
      assertEquals(2, answers.get(i).getRefusal().getExitCode());
      assertEquals("command", answers.get(i).getRefusal().getKind());
    }
    assertEquals(4, answers.get(2).getRefusal().getExitCode());
    assertEquals("store_file", answers.get(2).getRefusal().getKind());
    assertEquals("truncated", answers.get(2).getRefusal().getPath());

    r = run(new byte[] {0x02, (byte) 0xff, (byte) 0xff}, "serve"); // not a Request
    assertEquals(2, r.code);
    r = run(new byte[0], "serve");
    assertEquals(0, r.code);
    assertEquals(0, r.out.length);
  }

  private static byte[] storeVector(String file) throws IOException {
    return Files.readAllBytes(Path.of("..", "tests", "vectors", "store", file));
  }

  @Test
  void readStoreFileAppliesRecordsAndReportsEachRefusalKind() throws IOException {
    Result r = run(storeVector("records_torn_payload.dsxckpt"), "read-store-file");
    assertEquals(0, r.code, r.err);
    assertArrayEquals(storeVector("records_three.checkpoint"), r.out);
    assertEquals("", r.err);

    r = run(storeVector("record_delta_other_session.dsxckpt"), "read-store-file");
    assertEquals(3, r.code);
    assertEquals(0, r.out.length);
    assertTrue(r.err.startsWith("delta_shape: head.session_id: "), r.err);
    assertTrue(r.err.endsWith(" (rule delta.session)\n"), r.err);

    r = run(storeVector("record_final_invalid.dsxckpt"), "read-store-file");
    assertEquals(3, r.code);
    assertTrue(r.err.startsWith("checkpoint_shape: progress.trial_log[6].trial_idx: "), r.err);

    r = run(storeVector("record_generation_gap.dsxckpt"), "read-store-file");
    assertEquals(4, r.code);
    assertTrue(r.err.startsWith("store_file: record_generation: "), r.err);

    ByteArrayOutputStream in = new ByteArrayOutputStream();
    in.writeBytes(request(Command.COMMAND_READ_STORE_FILE, storeVector("records_three.dsxckpt")));
    in.writeBytes(
        request(Command.COMMAND_READ_STORE_FILE, storeVector("record_delta_refused.dsxckpt")));
    in.writeBytes(
        request(Command.COMMAND_READ_STORE_FILE, storeVector("record_payload_damaged.dsxckpt")));
    r = run(in.toByteArray(), "serve");
    assertEquals(0, r.code, r.err);
    List<Response> answers = responses(r.out);
    assertEquals(3, answers.size());
    assertArrayEquals(
        storeVector("records_three.checkpoint"), answers.get(0).getOutput().toByteArray());
    Refusal refusal = answers.get(1).getRefusal();
    assertEquals(3, refusal.getExitCode());
    assertEquals("delta_shape", refusal.getKind());
    assertEquals("kept", refusal.getPath());
    assertEquals("delta.kept", refusal.getRule());
    refusal = answers.get(2).getRefusal();
    assertEquals(4, refusal.getExitCode());
    assertEquals("store_file", refusal.getKind());
    assertEquals("record_checksum", refusal.getPath());
  }

  private static byte[] deltaVector(String file) throws IOException {
    return Files.readAllBytes(Path.of("..", "tests", "vectors", "delta", file));
  }

  @Test
  void reencodeDeltaWritesCanonicalBytesOrOneRefusalLine() throws IOException {
    byte[] delta = deltaVector("one_trial.delta.binpb");
    Result r = run(delta, "reencode-delta");
    assertEquals(0, r.code, r.err);
    assertArrayEquals(delta, r.out);
    assertEquals("", r.err);

    r = run(deltaVector("kept_in_head.delta.binpb"), "reencode-delta");
    assertEquals(3, r.code);
    assertEquals(0, r.out.length);
    assertTrue(r.err.startsWith("delta_shape: head.optimizer: "), r.err);
    assertTrue(r.err.endsWith(" (rule delta.kept_in_head)\n"), r.err);
    assertEquals(r.err.length() - 1, r.err.indexOf('\n'), r.err);

    // A checkpoint is not a delta.
    r = run(Checkpoints.encode(CheckpointsTest.base()), "reencode-delta");
    assertEquals(3, r.code);
    assertTrue(r.err.startsWith("delta_shape: <input>: "), r.err);
    assertTrue(r.err.endsWith(" (rule wire.tag)\n"), r.err);
  }

  @Test
  void applyDeltaReadsTheBaseFromTheFile(@TempDir Path tmp) throws IOException {
    Path base = tmp.resolve("base.binpb");
    Files.write(base, deltaVector("base_three.binpb"));
    Result r = run(deltaVector("one_trial.delta.binpb"), "apply-delta", base.toString());
    assertEquals(0, r.code, r.err);
    assertArrayEquals(deltaVector("one_trial.result.binpb"), r.out);
    assertEquals("", r.err);

    r = run(deltaVector("wrong_session.delta.binpb"), "apply-delta", base.toString());
    assertEquals(3, r.code);
    assertEquals(0, r.out.length);
    assertTrue(r.err.startsWith("delta_shape: head.session_id: "), r.err);
    assertTrue(r.err.endsWith(" (rule delta.session)\n"), r.err);

    r = run(deltaVector("trial_index.delta.binpb"), "apply-delta", base.toString());
    assertEquals(3, r.code);
    assertTrue(r.err.startsWith("checkpoint_shape: progress.trial_log[3].trial_idx: "), r.err);
    assertTrue(r.err.endsWith(" (rule trial.trial_idx)\n"), r.err);

    r = run(deltaVector("format_missing.delta.binpb"), "apply-delta", base.toString());
    assertEquals(3, r.code);
    assertTrue(r.err.startsWith("delta_shape: format: "), r.err);

    // The base is read first: a refused base is a checkpoint refusal, whatever the delta.
    Files.write(base, new byte[] {1, 2, 3});
    r = run(new byte[0], "apply-delta", base.toString());
    assertEquals(3, r.code);
    assertTrue(r.err.startsWith("checkpoint_shape: <input>: "), r.err);
    assertTrue(r.err.endsWith(" (rule input.trailer)\n"), r.err);

    r = run(new byte[0], "apply-delta", tmp.resolve("missing").toString());
    assertEquals(2, r.code);
    r = run(new byte[0], "apply-delta");
    assertEquals(2, r.code);
  }

  @Test
  void serveAnswersDeltaCommands() throws IOException {
    byte[] base = deltaVector("base_three.binpb");
    ByteArrayOutputStream in = new ByteArrayOutputStream();
    in.writeBytes(request(Command.COMMAND_REENCODE_DELTA, deltaVector("one_trial.delta.binpb")));
    in.writeBytes(request(Command.COMMAND_REENCODE_DELTA, deltaVector("kept_format.delta.binpb")));
    for (String name : new String[] {"one_trial", "wrong_base_trials", "no_progress"}) {
      Request.newBuilder()
          .setCommand(Command.COMMAND_APPLY_DELTA)
          .setInput(ByteString.copyFrom(deltaVector(name + ".delta.binpb")))
          .setBase(ByteString.copyFrom(base))
          .build()
          .writeDelimitedTo(in);
    }
    // No base: the empty base is refused as a checkpoint.
    in.writeBytes(request(Command.COMMAND_APPLY_DELTA, deltaVector("one_trial.delta.binpb")));
    Result r = run(in.toByteArray(), "serve");
    assertEquals(0, r.code, r.err);
    List<Response> answers = responses(r.out);
    assertEquals(6, answers.size());
    assertArrayEquals(
        deltaVector("one_trial.delta.binpb"), answers.get(0).getOutput().toByteArray());
    Refusal refusal = answers.get(1).getRefusal();
    assertEquals(3, refusal.getExitCode());
    assertEquals("delta_shape", refusal.getKind());
    assertEquals("kept", refusal.getPath());
    assertEquals("delta.kept", refusal.getRule());
    assertTrue(refusal.getMessage().startsWith("delta_shape: kept: "), refusal.getMessage());
    assertArrayEquals(
        deltaVector("one_trial.result.binpb"), answers.get(2).getOutput().toByteArray());
    refusal = answers.get(3).getRefusal();
    assertEquals("delta_shape", refusal.getKind());
    assertEquals("base_trials", refusal.getPath());
    assertEquals("delta.base_trials", refusal.getRule());
    refusal = answers.get(4).getRefusal();
    assertEquals(3, refusal.getExitCode());
    assertEquals("checkpoint_shape", refusal.getKind());
    assertEquals("progress", refusal.getPath());
    assertEquals("progress.required", refusal.getRule());
    refusal = answers.get(5).getRefusal();
    assertEquals("checkpoint_shape", refusal.getKind());
    assertEquals("<input>", refusal.getPath());
    assertEquals("input.trailer", refusal.getRule());
  }
}
