package com.dsxir.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.dsxir.optimizer_session.v1.Checkpoint;
import com.dsxir.optimizer_session.v1.Progress;
import java.io.ByteArrayOutputStream;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Checkpoints.reencode: protobuf's parsing rules on the bytes, unknown fields in read order. */
class CanonicalTest {
  static byte[] concat(byte[]... parts) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (byte[] part : parts) {
      out.writeBytes(part);
    }
    return out.toByteArray();
  }

  static byte[] bytes(int... values) {
    byte[] out = new byte[values.length];
    for (int i = 0; i < values.length; i++) {
      out[i] = (byte) values[i];
    }
    return out;
  }

  static final byte[] CANONICAL = Checkpoints.encode(CheckpointsTest.base());
  static final byte[] FIELD_100 = bytes(0xa2, 0x06, 0x02, 'h', 'i'); // 100: "hi"
  static final byte[] FIELD_99 = bytes(0x98, 0x06, 0x01); // 99: varint 1

  @Test
  void canonicalInputIsReencodedUnchanged() throws ResumeMismatch {
    assertArrayEquals(CANONICAL, Checkpoints.reencode(CANONICAL));
  }

  @Test
  void unknownFieldsKeepTheOrderRead() throws ResumeMismatch {
    byte[] newer = concat(CANONICAL, FIELD_100, FIELD_99);
    assertArrayEquals(newer, Checkpoints.reencode(newer));
    // Read before the known fields, they are written after them, in the same order.
    assertArrayEquals(newer, Checkpoints.reencode(concat(FIELD_100, CANONICAL, FIELD_99)));
    // protobuf-java's UnknownFieldSet orders them by number instead.
    assertArrayEquals(
        concat(CANONICAL, FIELD_99, FIELD_100), Checkpoints.encode(Checkpoints.decode(newer)));
  }

  @Test
  void aKnownFieldOfTheWrongWireTypeIsUnknown() throws ResumeMismatch {
    byte[] statusAsFixed64 = bytes(0x69, 1, 0, 0, 0, 0, 0, 0, 0); // 13 with wire type I64
    byte[] input = concat(statusAsFixed64, CANONICAL);
    assertArrayEquals(concat(CANONICAL, statusAsFixed64), Checkpoints.reencode(input));
  }

  @Test
  void repeatedMessageFieldsMergeAndScalarsTakeTheLastValue() throws ResumeMismatch {
    Checkpoint cp = CheckpointsTest.base();
    Progress progress = cp.getProgress();
    Progress firstHalf = progress.toBuilder().clearStartedAt().clearAttempts().build();
    Progress secondHalf = Progress.newBuilder().setStartedAt(progress.getStartedAt()).setAttempts(3).build();
    byte[] split =
        concat(
            cp.toBuilder().clearProgress().setSessionId("old").build().toByteArray(),
            Checkpoint.newBuilder().setProgress(firstHalf).build().toByteArray(),
            Checkpoint.newBuilder().setSessionId(cp.getSessionId()).build().toByteArray(),
            Checkpoint.newBuilder().setProgress(secondHalf).build().toByteArray());
    assertFalse(Arrays.equals(CANONICAL, split));
    assertArrayEquals(CANONICAL, Checkpoints.reencode(split));
    assertArrayEquals(CANONICAL, Checkpoints.encode(Checkpoints.decode(split)));
  }

  @Test
  void anotherOneofMemberReplacesTheFirst() throws ResumeMismatch {
    // terminal_reason: a list, then a string: the string remains.
    byte[] reason = bytes(0x72, 0x08, 0x4a, 0x02, 0x0a, 0x00, 0x32, 0x02, 'o', 'k');
    byte[] expected = concat(CANONICAL, bytes(0x72, 0x04, 0x32, 0x02, 'o', 'k'));
    assertArrayEquals(expected, Checkpoints.reencode(concat(CANONICAL, reason)));
    assertArrayEquals(
        expected, Checkpoints.encode(Checkpoints.decode(concat(CANONICAL, reason))));
  }

  @Test
  void varintsAreWrittenMinimal() throws ResumeMismatch {
    // status 1 as a 3-byte varint, after the canonical status.
    byte[] input = concat(CANONICAL, bytes(0x68, 0x81, 0x80, 0x00));
    assertArrayEquals(CANONICAL, Checkpoints.reencode(input));
  }

  @Test
  void malformedWireFormatIsRefused() {
    byte[][] bad = {
      bytes(0x83, 0x01, 0x08, 1), // group without an end
      bytes(0x83, 0x01, 0x8c, 0x01), // mismatched end of group
      bytes(0x0c), // end of group outside a group
      bytes(0x0e, 0), // wire type 6
      bytes(0x02, 0), // field number 0
      bytes(0x0a, 5, 'a'), // length past the end
      bytes(0x68), // truncated varint
      bytes(0x68, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81, 0x00), // 11 bytes
    };
    for (byte[] b : bad) {
      byte[] input = concat(CANONICAL, b);
      assertEquals(
          "<input>",
          assertThrows(ResumeMismatch.class, () -> Checkpoints.reencode(input)).field(),
          Arrays.toString(b));
      assertEquals(
          "<input>",
          assertThrows(ResumeMismatch.class, () -> Checkpoints.decode(input)).field());
    }
  }

  @Test
  void anUnknownGroupIsKept() throws ResumeMismatch {
    byte[] group = bytes(0x83, 0x01, 0x08, 1, 0x84, 0x01); // group 16 { 1: 1 }
    assertArrayEquals(concat(CANONICAL, group), Checkpoints.reencode(concat(group, CANONICAL)));
  }

  @Test
  void mutatedCheckpointsGetOneVerdictAndAFixedPoint() {
    Random rng = new Random(20260101);
    int accepted = 0;
    for (int i = 0; i < 3000; i++) {
      byte[] data = CANONICAL.clone();
      for (int flips = 1 + rng.nextInt(3); flips > 0; flips--) {
        data[rng.nextInt(data.length)] ^= (byte) (1 << rng.nextInt(8));
      }
      byte[] input = data;
      ResumeMismatch refusal = null;
      byte[] out = null;
      try {
        out = Checkpoints.reencode(input);
      } catch (ResumeMismatch e) {
        refusal = e;
      }
      boolean decodes;
      try {
        Checkpoints.decode(input);
        decodes = true;
      } catch (ResumeMismatch e) {
        decodes = false;
        assertTrue(refusal != null && refusal.field().equals(e.field()), e.getMessage());
      }
      if (decodes) {
        assertTrue(refusal == null, "reencode refused what decode accepts");
        accepted++;
        byte[] once = out;
        assertArrayEquals(once, assertDoesNotThrow(() -> Checkpoints.reencode(once)));
      }
    }
    assertTrue(accepted > 0 && accepted < 3000, "accepted " + accepted);
  }
}
