package com.dsxir.checkpoint;

import com.dsxir.conformance.v1.Command;
import com.dsxir.conformance.v1.Refusal;
import com.dsxir.conformance.v1.Request;
import com.dsxir.conformance.v1.Response;
import com.dsxir.optimizer_session.v1.Checkpoint;
import com.google.protobuf.ByteString;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.function.Function;

/**
 * Conformance testee of the Java binding (see tests/conformance). It is a test source, so the
 * published jar does not carry it; tests/conformance/testee-java runs it from target/test-classes
 * with the jar and its dependencies.
 *
 * <ul>
 *   <li>{@code reencode}: checkpoint bytes on stdin, canonical bytes on stdout (exit 0), or one
 *       refusal line on stderr (exit 3).
 *   <li>{@code read-store-file}: a store file on stdin (its commit records applied), the canonical
 *       bytes of its checkpoint on stdout (exit 0), or one line on stderr: a checkpoint refusal or
 *       a record's delta refused, {@code delta_shape: …} (exit 3), or {@code store_file: <kind>:
 *       <detail>} (exit 4).
 *   <li>{@code hash-trainset}: the encoding of one Term of kind {@code list_value} on stdin (map
 *       entries in any order); the lowercase hex of the trainset hash of its items and a newline on
 *       stdout (exit 0), or one refusal line on stderr (exit 3).
 *   <li>{@code hash-trainset-json}, {@code hash-trainset-jsonl}: JSON text (one array of examples)
 *       or JSON Lines text on stdin (FORMAT.md §6.1); the lowercase hex of its trainset hash and a
 *       newline on stdout (exit 0), or one refusal line on stderr (exit 3).
 *   <li>{@code reencode-delta}: delta bytes on stdin (FORMAT.md §13), their canonical bytes on
 *       stdout (exit 0), or one refusal line {@code delta_shape: …} on stderr (exit 3).
 *   <li>{@code apply-delta BASE_FILE}: delta bytes on stdin, the base checkpoint's bytes in the
 *       file {@code BASE_FILE}; the canonical bytes of the checkpoint the delta makes on stdout
 *       (exit 0), or one refusal line on stderr (exit 3): {@code checkpoint_shape: …} for the base
 *       or the new checkpoint, {@code delta_shape: …} for the delta or a delta that does not apply
 *       to the base.
 *   <li>{@code serve}: size-delimited {@code dsxir.conformance.v1.Request} messages on stdin
 *       (tests/conformance/proto), one size-delimited {@code Response} per request on stdout, until
 *       the end of stdin: the output of the one-shot command (the canonical bytes, or the digest
 *       line), or its refusal field by field. An unspecified or unknown command is a refusal of
 *       kind {@code command} with exit code 2.
 * </ul>
 */
public final class Testee {
  static final String USAGE =
      "usage: testee reencode|hash-trainset|hash-trainset-json|hash-trainset-jsonl"
          + "|read-store-file|reencode-delta|apply-delta BASE_FILE|serve";

  private Testee() {}

  public static void main(String[] args) {
    OutputStream stdout = new FileOutputStream(FileDescriptor.out);
    int code = run(args, System.in, stdout, System.err);
    System.exit(code);
  }

  /** Runs the testee; returns its exit code. */
  static int run(String[] args, InputStream in, OutputStream out, PrintStream err) {
    if (args.length == 1 && args[0].equals("reencode")) {
      return answerStdin(in, out, err, Testee::reencodeAnswer);
    }
    if (args.length == 1 && args[0].equals("read-store-file")) {
      return answerStdin(in, out, err, Testee::storeFileAnswer);
    }
    if (args.length == 1 && args[0].equals("hash-trainset")) {
      return answerStdin(in, out, err, Testee::hashTrainsetAnswer);
    }
    if (args.length == 1
        && (args[0].equals("hash-trainset-json") || args[0].equals("hash-trainset-jsonl"))) {
      boolean lines = args[0].endsWith("jsonl");
      return answerStdin(in, out, err, input -> hashTrainsetJsonAnswer(lines, input));
    }
    if (args.length == 1 && args[0].equals("reencode-delta")) {
      return answerStdin(in, out, err, Testee::reencodeDeltaAnswer);
    }
    if (args.length == 2 && args[0].equals("apply-delta")) {
      byte[] base;
      try {
        base = Files.readAllBytes(Path.of(args[1]));
      } catch (IOException e) {
        err.println("testee: cannot read " + args[1] + ": " + e.getMessage());
        return 2;
      }
      return answerStdin(in, out, err, input -> applyDeltaAnswer(base, input));
    }
    if (args.length == 1 && args[0].equals("serve")) {
      try {
        serve(in, out);
        return 0;
      } catch (IOException e) {
        err.println("testee: " + e.getMessage());
        return 2;
      }
    }
    err.println(USAGE);
    return 2;
  }

  /** Reads all of stdin and writes {@code answering}'s answer to it; returns the exit code. */
  private static int answerStdin(
      InputStream in, OutputStream out, PrintStream err, Function<byte[], Answer> answering) {
    byte[] input;
    try {
      input = in.readAllBytes();
    } catch (IOException e) {
      err.println("testee: cannot read stdin: " + e.getMessage());
      return 2;
    }
    return answer(answering.apply(input), out, err);
  }

  /**
   * An answer: the output, exactly what the one-shot command writes on stdout (canonical bytes, or
   * a digest as lowercase hex and a newline), or a refusal with its exit code (3 or 4), kind, path,
   * rule (empty for none) and one-line text.
   */
  private record Answer(
      byte[] output, int exitCode, String kind, String path, String rule, String line) {
    static Answer ok(byte[] output) {
      return new Answer(output, 0, "", "", "", "");
    }

    static Answer digest(byte[] digest) {
      return ok((HexFormat.of().formatHex(digest) + "\n").getBytes(StandardCharsets.US_ASCII));
    }

    static Answer shape(ResumeMismatch e) {
      return new Answer(
          null,
          3,
          "checkpoint_shape",
          e.field(),
          e.rule() == null ? "" : e.rule(),
          oneLine(e.getMessage()));
    }
  }

  private static Answer deltaShape(InvalidDelta e) {
    return new Answer(
        null,
        3,
        InvalidDelta.DELTA_SHAPE,
        e.field(),
        e.rule() == null ? "" : e.rule(),
        oneLine(e.getMessage()));
  }

  private static Answer reencodeDeltaAnswer(byte[] input) {
    try {
      return Answer.ok(Deltas.reencode(input));
    } catch (InvalidDelta e) {
      return deltaShape(e);
    }
  }

  /** The base is read first (checkpoint_shape), then the delta (delta_shape), then applied. */
  private static Answer applyDeltaAnswer(byte[] base, byte[] input) {
    try {
      return Answer.ok(Deltas.apply(base, input));
    } catch (ResumeMismatch e) {
      return Answer.shape(e);
    } catch (InvalidDelta e) {
      return deltaShape(e);
    }
  }

  private static Answer reencodeAnswer(byte[] input) {
    try {
      return Answer.ok(Checkpoints.reencode(input));
    } catch (ResumeMismatch e) {
      return Answer.shape(e);
    }
  }

  /**
   * A damaged file is {@code store_file} (exit 4); an invalid snapshot or final checkpoint is
   * {@code checkpoint_shape} and a record's delta refused {@code delta_shape} (exit 3).
   */
  private static Answer storeFileAnswer(byte[] input) {
    Checkpoint checkpoint;
    try {
      checkpoint = StoreFile.read(input).checkpoint();
    } catch (ResumeMismatch e) {
      return Answer.shape(e);
    } catch (InvalidDelta e) {
      return deltaShape(e);
    } catch (CorruptStoreFile e) {
      return new Answer(null, 4, "store_file", e.kind().id(), "", oneLine(e.getMessage()));
    }
    try {
      return Answer.ok(Checkpoints.encode(checkpoint));
    } catch (InvalidCheckpoint e) { // the records made a checkpoint over the size or weight limit
      return Answer.shape(ResumeMismatch.shape(e.rule(), e.path(), e.detail()));
    }
  }

  private static Answer hashTrainsetAnswer(byte[] input) {
    try {
      return Answer.digest(Sessions.hashTrainsetInput(input));
    } catch (ResumeMismatch e) {
      return Answer.shape(e);
    }
  }

  /** JSON or JSON Lines text: the digest, or a refusal of kind {@code trainset_json}. */
  private static Answer hashTrainsetJsonAnswer(boolean lines, byte[] input) {
    try {
      byte[] digest =
          lines ? TrainsetJson.hashTrainsetJsonl(input) : TrainsetJson.hashTrainsetJson(input);
      return Answer.digest(digest);
    } catch (TrainsetJson.InvalidJson e) {
      String place = (e.line() > 0 ? "line " + e.line() + ", byte " : "byte ") + e.offset();
      return new Answer(
          null, 3, "trainset_json", place, "", "trainset_json: " + oneLine(e.getMessage()));
    }
  }

  /** Writes a one-shot answer: its bytes on stdout, or its refusal line on stderr; returns the exit code. */
  private static int answer(Answer answer, OutputStream out, PrintStream err) {
    if (answer.exitCode() != 0) {
      err.println(answer.line());
      return answer.exitCode();
    }
    byte[] body = answer.output();
    try {
      out.write(body);
      out.flush();
    } catch (IOException e) {
      err.println("testee: cannot write stdout: " + e.getMessage());
      return 2;
    }
    return 0;
  }

  /** The answer to one request of the serve loop. */
  static Response respond(Request request) {
    byte[] input = request.getInput().toByteArray();
    Command command = request.getCommand();
    Answer answer =
        switch (command) {
          case COMMAND_REENCODE -> reencodeAnswer(input);
          case COMMAND_HASH_TRAINSET -> hashTrainsetAnswer(input);
          case COMMAND_HASH_TRAINSET_JSON -> hashTrainsetJsonAnswer(false, input);
          case COMMAND_HASH_TRAINSET_JSONL -> hashTrainsetJsonAnswer(true, input);
          case COMMAND_READ_STORE_FILE -> storeFileAnswer(input);
          case COMMAND_REENCODE_DELTA -> reencodeDeltaAnswer(input);
          case COMMAND_APPLY_DELTA -> applyDeltaAnswer(request.getBase().toByteArray(), input);
          default -> null;
        };
    if (answer == null) {
      return Response.newBuilder()
          .setRefusal(
              Refusal.newBuilder()
                  .setExitCode(2)
                  .setKind("command")
                  .setMessage("unsupported command " + request.getCommandValue()))
          .build();
    }
    if (answer.exitCode() == 0) {
      return Response.newBuilder().setOutput(ByteString.copyFrom(answer.output())).build();
    }
    return Response.newBuilder()
        .setRefusal(
            Refusal.newBuilder()
                .setExitCode(answer.exitCode())
                .setKind(answer.kind())
                .setPath(answer.path())
                .setRule(answer.rule())
                .setMessage(answer.line()))
        .build();
  }

  /** Size-delimited Requests in, one size-delimited Response each out, until the end of input. */
  private static void serve(InputStream rawIn, OutputStream rawOut) throws IOException {
    InputStream in = new BufferedInputStream(rawIn);
    OutputStream out = new BufferedOutputStream(rawOut);
    while (true) {
      Request request = Request.parseDelimitedFrom(in);
      if (request == null) {
        return;
      }
      respond(request).writeDelimitedTo(out);
      out.flush();
    }
  }

  /** The refusal as a single line (a detail never spans lines, but make sure). */
  private static String oneLine(String message) {
    return message.replace('\n', ' ').replace('\r', ' ');
  }
}
