package com.dsxir.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

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

  private static byte[] request(char cmd, byte[] payload) {
    return ByteBuffer.allocate(5 + payload.length)
        .put((byte) cmd)
        .putInt(payload.length)
        .put(payload)
        .array();
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
    assertTrue(r.err.endsWith(" (rule input.malformed)\n"), r.err);
    assertTrue(r.err.indexOf('\n') == r.err.length() - 1, r.err);

    r = run(CheckpointsTest.base().toBuilder().setStatusValue(0).build().toByteArray(), "reencode");
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
    in.writeBytes(request('r', bytes));
    in.writeBytes(request('r', new byte[] {0x12, 0x02, (byte) 0xc3, 0x28}));
    in.writeBytes(request('r', new byte[0]));
    in.writeBytes(request('r', bytes));
    Result r = run(in.toByteArray(), "serve");
    assertEquals(0, r.code, r.err);

    DataInputStream responses = new DataInputStream(new ByteArrayInputStream(r.out));
    assertEquals(0, responses.readUnsignedByte());
    assertArrayEquals(bytes, responses.readNBytes(responses.readInt()));
    assertEquals(3, responses.readUnsignedByte());
    String line = new String(responses.readNBytes(responses.readInt()), StandardCharsets.UTF_8);
    assertTrue(line.startsWith("checkpoint_shape: <input>: ") && !line.contains("\n"), line);
    assertEquals(3, responses.readUnsignedByte());
    line = new String(responses.readNBytes(responses.readInt()), StandardCharsets.UTF_8);
    assertTrue(line.startsWith("checkpoint_shape: format: "), line);
    assertTrue(line.endsWith(" (rule format.required)"), line);
    assertEquals(0, responses.readUnsignedByte());
    assertArrayEquals(bytes, responses.readNBytes(responses.readInt()));
    assertEquals(-1, responses.read());
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
    in.writeBytes(request('h', qaTrainset()));
    in.writeBytes(request('h', new byte[0]));
    in.writeBytes(request('h', Terms.termBytes(List.of())));
    Result r = run(in.toByteArray(), "serve");
    assertEquals(0, r.code, r.err);
    DataInputStream responses = new DataInputStream(new ByteArrayInputStream(r.out));
    assertEquals(0, responses.readUnsignedByte());
    assertEquals(
        QA_DIGEST + "\n",
        new String(responses.readNBytes(responses.readInt()), StandardCharsets.US_ASCII));
    assertEquals(3, responses.readUnsignedByte());
    String line = new String(responses.readNBytes(responses.readInt()), StandardCharsets.UTF_8);
    assertTrue(line.startsWith("checkpoint_shape: <input>: ") && !line.contains("\n"), line);
    assertEquals(0, responses.readUnsignedByte());
    assertEquals(65, responses.readInt());
    responses.readNBytes(65);
    assertEquals(-1, responses.read());
  }

  @Test
  void serveRefusesUnknownCommandsAndTruncatedRequests() {
    Result r = run(request('x', new byte[] {0x4a, 0x00}), "serve");
    assertEquals(2, r.code);
    assertEquals(0, r.out.length);
    r = run(new byte[] {'r', 0, 0, 0, 9, 1, 2}, "serve");
    assertEquals(2, r.code);
    r = run(new byte[0], "serve");
    assertEquals(0, r.code);
    assertEquals(0, r.out.length);
  }
}
