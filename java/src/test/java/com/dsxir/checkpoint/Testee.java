package com.dsxir.checkpoint;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;

/**
 * Conformance testee of the Java binding (see tests/conformance). It is a test source, so the
 * published jar does not carry it; tests/conformance/testee-java runs it from target/test-classes
 * with the jar and its dependencies.
 *
 * <ul>
 *   <li>{@code reencode}: checkpoint bytes on stdin, canonical bytes on stdout (exit 0), or one
 *       refusal line on stderr (exit 3).
 *   <li>{@code read-store-file}: a store file on stdin, the canonical bytes of its checkpoint on
 *       stdout (exit 0), or one line on stderr: a checkpoint refusal (exit 3) or {@code
 *       store_file: <kind>: <detail>} (exit 4).
 *   <li>{@code hash-trainset}: the encoding of one Term of kind {@code list_value} on stdin (map
 *       entries in any order); the lowercase hex of the trainset hash of its items and a newline on
 *       stdout (exit 0), or one refusal line on stderr (exit 3).
 *   <li>{@code hash-trainset-json}, {@code hash-trainset-jsonl}: JSON text (one array of examples)
 *       or JSON Lines text on stdin (FORMAT.md §6.1); the lowercase hex of its trainset hash and a
 *       newline on stdout (exit 0), or one refusal line on stderr (exit 3).
 *   <li>{@code serve}: requests {@code <cmd byte><u32 BE length><payload>} on stdin, responses
 *       {@code <status byte><u32 BE length><payload>} on stdout, until EOF ({@code r} reencode,
 *       {@code h} hash-trainset, {@code j} hash-trainset-json, {@code l} hash-trainset-jsonl,
 *       {@code s} read-store-file).
 * </ul>
 */
public final class Testee {
  static final String USAGE =
      "usage: testee reencode|hash-trainset|hash-trainset-json|hash-trainset-jsonl"
          + "|read-store-file|serve";

  private Testee() {}

  public static void main(String[] args) {
    OutputStream stdout = new FileOutputStream(FileDescriptor.out);
    int code = run(args, System.in, stdout, System.err);
    System.exit(code);
  }

  /** Runs the testee; returns its exit code. */
  static int run(String[] args, InputStream in, OutputStream out, PrintStream err) {
    if (args.length == 1 && args[0].equals("reencode")) {
      return reencode(in, out, err);
    }
    if (args.length == 1 && args[0].equals("read-store-file")) {
      return readStoreFile(in, out, err);
    }
    if (args.length == 1 && args[0].equals("hash-trainset")) {
      return hashTrainset(in, out, err);
    }
    if (args.length == 1
        && (args[0].equals("hash-trainset-json") || args[0].equals("hash-trainset-jsonl"))) {
      byte[] input;
      try {
        input = in.readAllBytes();
      } catch (IOException e) {
        err.println("testee: cannot read stdin: " + e.getMessage());
        return 2;
      }
      return answer(hashTrainsetJsonAnswer(args[0].endsWith("jsonl"), input), out, err);
    }
    if (args.length == 1 && args[0].equals("serve")) {
      try {
        serve(in, out);
        return 0;
      } catch (UsageError | IOException e) {
        err.println("testee: " + e.getMessage());
        return 2;
      }
    }
    err.println(USAGE);
    return 2;
  }

  private static int reencode(InputStream in, OutputStream out, PrintStream err) {
    byte[] input;
    try {
      input = in.readAllBytes();
    } catch (IOException e) {
      err.println("testee: cannot read stdin: " + e.getMessage());
      return 2;
    }
    byte[] canonical;
    try {
      canonical = Checkpoints.reencode(input);
    } catch (ResumeMismatch e) {
      err.println(oneLine(e.getMessage()));
      return 3;
    }
    try {
      out.write(canonical);
      out.flush();
    } catch (IOException e) {
      err.println("testee: cannot write stdout: " + e.getMessage());
      return 2;
    }
    return 0;
  }

  /** An answer: the exit status (0, 3 or 4) and the bytes or the refusal line. */
  private record Answer(int status, byte[] body) {}

  private static Answer storeFileAnswer(byte[] input) {
    try {
      return new Answer(0, Checkpoints.encode(StoreFile.read(input).checkpoint()));
    } catch (ResumeMismatch e) {
      return new Answer(3, oneLine(e.getMessage()).getBytes(StandardCharsets.UTF_8));
    } catch (CorruptStoreFile e) {
      return new Answer(4, oneLine(e.getMessage()).getBytes(StandardCharsets.UTF_8));
    }
  }

  private static Answer hashTrainsetAnswer(byte[] input) {
    try {
      String digest = HexFormat.of().formatHex(Sessions.hashTrainsetInput(input)) + "\n";
      return new Answer(0, digest.getBytes(StandardCharsets.US_ASCII));
    } catch (ResumeMismatch e) {
      return new Answer(3, oneLine(e.getMessage()).getBytes(StandardCharsets.UTF_8));
    }
  }

  private static int hashTrainset(InputStream in, OutputStream out, PrintStream err) {
    byte[] input;
    try {
      input = in.readAllBytes();
    } catch (IOException e) {
      err.println("testee: cannot read stdin: " + e.getMessage());
      return 2;
    }
    return answer(hashTrainsetAnswer(input), out, err);
  }

  /** JSON or JSON Lines text: the digest line, or {@code trainset_json: <refusal>}. */
  private static Answer hashTrainsetJsonAnswer(boolean lines, byte[] input) {
    try {
      byte[] digest =
          lines ? TrainsetJson.hashTrainsetJsonl(input) : TrainsetJson.hashTrainsetJson(input);
      String hex = HexFormat.of().formatHex(digest) + "\n";
      return new Answer(0, hex.getBytes(StandardCharsets.US_ASCII));
    } catch (TrainsetJson.InvalidJson e) {
      String line = "trainset_json: " + oneLine(e.getMessage());
      return new Answer(3, line.getBytes(StandardCharsets.UTF_8));
    }
  }

  /** Writes an answer: its bytes on stdout, or its refusal line on stderr; returns the exit code. */
  private static int answer(Answer answer, OutputStream out, PrintStream err) {
    if (answer.status() != 0) {
      err.println(new String(answer.body(), StandardCharsets.UTF_8));
      return answer.status();
    }
    try {
      out.write(answer.body());
      out.flush();
    } catch (IOException e) {
      err.println("testee: cannot write stdout: " + e.getMessage());
      return 2;
    }
    return 0;
  }

  private static int readStoreFile(InputStream in, OutputStream out, PrintStream err) {
    byte[] input;
    try {
      input = in.readAllBytes();
    } catch (IOException e) {
      err.println("testee: cannot read stdin: " + e.getMessage());
      return 2;
    }
    return answer(storeFileAnswer(input), out, err);
  }

  /** A protocol error of the serve loop: reported with exit code 2. */
  private static final class UsageError extends Exception {
    private static final long serialVersionUID = 1L;

    UsageError(String message) {
      super(message);
    }
  }

  private static void serve(InputStream rawIn, OutputStream rawOut)
      throws IOException, UsageError {
    DataInputStream in = new DataInputStream(new BufferedInputStream(rawIn));
    DataOutputStream out = new DataOutputStream(new BufferedOutputStream(rawOut));
    while (true) {
      int cmd = in.read();
      if (cmd < 0) {
        return;
      }
      byte[] payload;
      try {
        int length = in.readInt();
        if (length < 0) {
          throw new UsageError("request payload longer than 2 GiB");
        }
        payload = in.readNBytes(length);
        if (payload.length != length) {
          throw new EOFException();
        }
      } catch (EOFException e) {
        throw new UsageError("truncated request");
      }
      int status;
      byte[] body;
      if (cmd == 's' || cmd == 'h' || cmd == 'j' || cmd == 'l') {
        Answer answer =
            switch (cmd) {
              case 's' -> storeFileAnswer(payload);
              case 'h' -> hashTrainsetAnswer(payload);
              default -> hashTrainsetJsonAnswer(cmd == 'l', payload);
            };
        status = answer.status();
        body = answer.body();
      } else if (cmd == 'r') {
        try {
          body = Checkpoints.reencode(payload);
          status = 0;
        } catch (ResumeMismatch e) {
          body = oneLine(e.getMessage()).getBytes(StandardCharsets.UTF_8);
          status = 3;
        }
      } else {
        throw new UsageError(
            "unsupported command '"
                + (char) cmd
                + "' (the Java testee serves 'r', 'h', 'j', 'l' and 's')");
      }
      out.writeByte(status);
      out.writeInt(body.length);
      out.write(body);
      out.flush();
    }
  }

  /** The refusal as a single line (a detail never spans lines, but make sure). */
  private static String oneLine(String message) {
    return message.replace('\n', ' ').replace('\r', ' ');
  }
}
