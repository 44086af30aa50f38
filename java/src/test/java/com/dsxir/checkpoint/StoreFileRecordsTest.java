package com.dsxir.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.dsxir.optimizer_session.v1.Checkpoint;
import com.dsxir.optimizer_session.v1.CheckpointDelta;
import com.dsxir.optimizer_session.v1.Progress;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Commit records (docs/store-file.md §9): torn tails, damaged records, the generation sequence,
 * a head without progress, and the record writer, on tests/vectors/store/records_three.dsxckpt (a
 * snapshot of generation 5 and records of generations 6, 7 and 8).
 */
class StoreFileRecordsTest {
  private static Path dir() {
    String override = System.getenv("DSXIR_VECTORS_DIR");
    return override != null ? Path.of(override) : Path.of("..", "tests", "vectors");
  }

  private static byte[] three() throws IOException {
    return Files.readAllBytes(dir().resolve("store/records_three.dsxckpt"));
  }

  /** A record's place in a file: where it starts, its delta starts and it ends. */
  private record Place(int start, long generation, int delta, int end) {}

  private static int bodyEnd(byte[] data) {
    ByteBuffer buffer = ByteBuffer.wrap(data);
    return StoreFile.HEADER_SIZE + buffer.getInt(20) + (int) buffer.getLong(24);
  }

  /** The records of an intact file, walked without checks. */
  private static List<Place> places(byte[] data) {
    ByteBuffer buffer = ByteBuffer.wrap(data);
    List<Place> out = new ArrayList<>();
    int at = bodyEnd(data);
    while (at < data.length) {
      int delta = at + StoreFile.RECORD_HEADER_SIZE + buffer.getInt(at + 12);
      int end = delta + buffer.getInt(at + 16);
      out.add(new Place(at, buffer.getLong(at + 4), delta, end));
      at = end;
    }
    return out;
  }

  private static Checkpoint snapshot(byte[] data) throws Exception {
    return StoreFile.read(Arrays.copyOf(data, bodyEnd(data))).checkpoint();
  }

  private static CheckpointDelta delta(byte[] data, Place place) throws InvalidDelta {
    return Deltas.decode(Arrays.copyOfRange(data, place.delta(), place.end()));
  }

  /** The checkpoints after 0, 1, 2, … records, each made by {@link Deltas#apply}. */
  private static List<Checkpoint> expected(byte[] data) throws Exception {
    List<Checkpoint> out = new ArrayList<>();
    Checkpoint cp = snapshot(data);
    out.add(cp);
    for (Place place : places(data)) {
      cp = Deltas.apply(cp, delta(data, place));
      out.add(cp);
    }
    return out;
  }

  private static byte[] concat(byte[]... parts) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (byte[] part : parts) {
      out.writeBytes(part);
    }
    return out.toByteArray();
  }

  @Test
  void theVectorHasThreeRecordsAfterItsSnapshot() throws Exception {
    byte[] data = three();
    List<Place> places = places(data);
    assertEquals(3, places.size());
    assertEquals(data.length, places.get(2).end());
    StoreFile file = StoreFile.read(data);
    assertEquals(8, file.generation());
    assertEquals(3, file.records());
    assertEquals(data.length, file.end());
    List<Checkpoint> expected = expected(data);
    assertEquals(expected.get(3), file.checkpoint());
    assertTrue(
        expected.get(3).getProgress().getTrialLogCount()
            > expected.get(0).getProgress().getTrialLogCount());
  }

  @Test
  void everyCutAfterTheSnapshotReadsAsTheWholeRecordsBeforeIt() throws Exception {
    byte[] data = three();
    List<Place> places = places(data);
    List<Checkpoint> expected = expected(data);
    for (int n = bodyEnd(data); n <= data.length; n++) {
      int whole = 0;
      int end = bodyEnd(data);
      for (Place place : places) {
        if (place.end() <= n) {
          whole++;
          end = place.end();
        }
      }
      StoreFile file = StoreFile.read(Arrays.copyOf(data, n));
      assertEquals(5 + whole, file.generation(), n + " bytes");
      assertEquals(whole, file.records(), n + " bytes");
      assertEquals(end, file.end(), n + " bytes");
      assertEquals(expected.get(whole), file.checkpoint(), n + " bytes");
    }
  }

  @Test
  void everyFlippedBitInARecordIsRecordChecksum() throws Exception {
    byte[] good = three();
    for (int i = bodyEnd(good); i < good.length; i++) {
      for (int bit = 0; bit < 8; bit++) {
        byte[] damaged = good.clone();
        damaged[i] ^= (byte) (1 << bit);
        CorruptStoreFile e =
            assertThrows(CorruptStoreFile.class, () -> StoreFile.read(damaged), i + "/" + bit);
        assertEquals(CorruptStoreFile.Kind.RECORD_CHECKSUM, e.kind(), i + "/" + bit);
      }
    }
  }

  @Test
  void aFlippedBitInATornTailIsRefusedOrIgnoredNeverRead() throws Exception {
    byte[] whole = three();
    Place last = places(whole).get(2);
    byte[] expected = Checkpoints.encode(expected(whole).get(2));
    // The last record cut at a few places: inside its header, right after it, in its payload.
    int[] cuts = {
      last.start() + 1, last.start() + 27, last.start() + 28, last.delta() + 10, last.end() - 1
    };
    for (int cut : cuts) {
      byte[] torn = Arrays.copyOf(whole, cut);
      int refused = 0;
      for (int i = bodyEnd(torn); i < torn.length; i++) {
        for (int bit = 0; bit < 8; bit++) {
          byte[] damaged = torn.clone();
          damaged[i] ^= (byte) (1 << bit);
          StoreFile file;
          try {
            file = StoreFile.read(damaged);
          } catch (CorruptStoreFile e) {
            assertEquals(CorruptStoreFile.Kind.RECORD_CHECKSUM, e.kind(), cut + ":" + i);
            refused++;
            continue;
          }
          assertTrue(i >= last.start(), "a flip before the tail was read: " + cut + ":" + i);
          assertEquals(7, file.generation());
          assertArrayEquals(expected, Checkpoints.encode(file.checkpoint()));
        }
      }
      // Every flip in the intact records is refused; in the tail's whole header too.
      int header = cut - last.start() >= StoreFile.RECORD_HEADER_SIZE ? 28 : 0;
      assertEquals((last.start() - bodyEnd(torn) + header) * 8, refused, "cut " + cut);
    }
  }

  @Test
  void theWriterWritesTheRecordsOfThePythonStore() throws Exception {
    byte[] data = three();
    List<Place> places = places(data);
    List<Checkpoint> expected = expected(data);
    assertArrayEquals(
        Arrays.copyOf(data, bodyEnd(data)), StoreFile.write(5, expected.get(0), true));
    for (int k = 0; k < places.size(); k++) {
      Place place = places.get(k);
      assertArrayEquals(
          Arrays.copyOfRange(data, place.start(), place.end()),
          StoreFile.record(place.generation(), expected.get(k + 1), delta(data, place)));
    }
  }

  @Test
  void recordsAreRefusedOnlyAfterEveryRecordIsScanned() throws Exception {
    byte[] data = three();
    List<Place> places = places(data);
    Checkpoint snap = snapshot(data);
    List<Checkpoint> expected = expected(data);
    byte[] first = StoreFile.record(9, expected.get(1), delta(data, places.get(0)));
    byte[] second = StoreFile.record(7, expected.get(2), delta(data, places.get(1)));
    second[second.length - 1] ^= 1; // damaged: its payload checksum fails
    byte[] file = concat(StoreFile.write(5, snap, true), first, second);
    CorruptStoreFile e = assertThrows(CorruptStoreFile.class, () -> StoreFile.read(file));
    assertEquals(CorruptStoreFile.Kind.RECORD_CHECKSUM, e.kind());
    second[second.length - 1] ^= 1;
    byte[] gap = concat(StoreFile.write(5, snap, true), first, second);
    e = assertThrows(CorruptStoreFile.class, () -> StoreFile.read(gap));
    assertEquals(CorruptStoreFile.Kind.RECORD_GENERATION, e.kind());
    assertEquals("a record commits generation 9 after 5", e.detail());
  }

  @Test
  void nothingFollowsTheLargestGeneration() throws Exception {
    byte[] data = three();
    Place place = places(data).get(0);
    Checkpoint snap = snapshot(data);
    Checkpoint after = expected(data).get(1);
    CheckpointDelta delta = delta(data, place);
    // 2^64-1 + 1 wraps to 0 in a long: a record of generation 0 must not follow it.
    byte[] wrapped =
        concat(
            StoreFile.write(-1L, snap, true),
            StoreFile.record(0, after, delta.toBuilder().setBaseGeneration(-1L).build()));
    CorruptStoreFile e = assertThrows(CorruptStoreFile.class, () -> StoreFile.read(wrapped));
    assertEquals(CorruptStoreFile.Kind.RECORD_GENERATION, e.kind());
    byte[] last =
        concat(
            StoreFile.write(-2L, snap, true),
            StoreFile.record(-1L, after, delta.toBuilder().setBaseGeneration(-2L).build()));
    StoreFile file = StoreFile.read(last);
    assertEquals(-1L, file.generation());
    assertEquals(after, file.checkpoint());
    byte[] base =
        concat(
            StoreFile.write(4, snap, true),
            StoreFile.record(5, after, delta.toBuilder().setBaseGeneration(5).build()));
    e = assertThrows(CorruptStoreFile.class, () -> StoreFile.read(base));
    assertEquals(CorruptStoreFile.Kind.RECORD_GENERATION, e.kind());
    assertEquals("the delta of generation 5 applies to 5", e.detail());
  }

  @Test
  void aHeadWithoutProgressDropsTheEntriesBeforeIt() throws Exception {
    byte[] data = three();
    Checkpoint snap = snapshot(data);
    CheckpointDelta first = delta(data, places(data).get(0));
    long trials = snap.getProgress().getTrialLogCount();
    assertTrue(trials > 0);
    Checkpoint bare = first.getHead().toBuilder().clearProgress().build();
    CheckpointDelta drop = first.toBuilder().setHead(bare).build();
    Progress empty =
        first.getHead().getProgress().toBuilder()
            .clearTrialLog()
            .setAttempts(0)
            .setCompleted(0)
            .setErrors(0)
            .clearBestScore()
            .clearBestTrialIdx()
            .build();
    Checkpoint restarted = first.getHead().toBuilder().setProgress(empty).build();
    CheckpointDelta restart =
        first.toBuilder().setBaseGeneration(6).setBaseTrials(0).setHead(restarted).build();
    // The final checkpoint: the restarted head with the kept fields of the snapshot.
    Checkpoint.Builder want = restarted.toBuilder();
    for (var field : Checkpoint.getDescriptor().getFields()) {
      if ((first.getKept() & (1 << field.getNumber())) != 0
          && (field.isRepeated() || snap.hasField(field))) {
        want.setField(field, snap.getField(field));
      }
    }
    Checkpoint expected = want.build();
    // The checkpoint between the two records has no progress: §7 refuses it, the reader does not
    // look at it.
    assertThrows(ResumeMismatch.class, () -> Checkpoints.validate(bare));
    byte[] file =
        concat(
            StoreFile.write(5, snap, true),
            StoreFile.record(6, StoreFile.encodeSummary(snap), Deltas.encode(drop)),
            StoreFile.record(7, expected, restart));
    StoreFile read = StoreFile.read(file);
    assertEquals(7, read.generation());
    assertEquals(expected, read.checkpoint());
    assertEquals(0, read.checkpoint().getProgress().getTrialLogCount());
    // The next delta's base_trials counts from 0: the entries before the bare head are gone.
    CheckpointDelta stale = restart.toBuilder().setBaseTrials(trials).build();
    byte[] counted =
        concat(
            StoreFile.write(5, snap, true),
            StoreFile.record(6, StoreFile.encodeSummary(snap), Deltas.encode(drop)),
            StoreFile.record(7, expected, stale));
    InvalidDelta e = assertThrows(InvalidDelta.class, () -> StoreFile.read(counted));
    assertEquals(DeltaRules.DELTA_BASE_TRIALS, e.rule());
    assertEquals("base_trials", e.field());
    // Ending with the bare head: the final checkpoint is refused as §7 refuses it.
    byte[] ends =
        concat(
            StoreFile.write(5, snap, true),
            StoreFile.record(6, StoreFile.encodeSummary(snap), Deltas.encode(drop)));
    ResumeMismatch refused = assertThrows(ResumeMismatch.class, () -> StoreFile.read(ends));
    assertEquals(Rules.PROGRESS_REQUIRED, refused.rule());
    assertEquals("progress", refused.field());
  }

  @Test
  void theLastRecordsSummaryMustBeTheFinalCheckpoints() throws Exception {
    byte[] data = three();
    Place place = places(data).get(0);
    Checkpoint snap = snapshot(data);
    CheckpointDelta delta = delta(data, place);
    byte[] stale =
        concat(
            StoreFile.write(5, snap, true),
            StoreFile.record(6, StoreFile.encodeSummary(snap), Deltas.encode(delta)));
    CorruptStoreFile e = assertThrows(CorruptStoreFile.class, () -> StoreFile.read(stale));
    assertEquals(CorruptStoreFile.Kind.SUMMARY_MISMATCH, e.kind());
    assertFalse(
        Arrays.equals(
            StoreFile.encodeSummary(snap), StoreFile.encodeSummary(expected(data).get(1))));
  }

  @Test
  void flagsZeroHasNoRecordsAndTheRecordWriterRefusesOversizedParts() throws Exception {
    byte[] data = three();
    Checkpoint snap = snapshot(data);
    byte[] plain =
        concat(
            StoreFile.write(5, snap, false),
            Arrays.copyOfRange(data, bodyEnd(data), data.length));
    CorruptStoreFile e = assertThrows(CorruptStoreFile.class, () -> StoreFile.read(plain));
    assertEquals(CorruptStoreFile.Kind.TRAILING_BYTES, e.kind());
    assertThrows(
        IllegalArgumentException.class,
        () -> StoreFile.record(6, new byte[StoreFile.MAX_SUMMARY_BYTES + 1], new byte[0]));
  }
}
