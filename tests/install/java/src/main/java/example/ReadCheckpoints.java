package example;

import com.dsxir.checkpoint.Checkpoints;
import com.dsxir.checkpoint.ResumeMismatch;
import com.dsxir.optimizer_session.v1.Checkpoint;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Reads checkpoint files with the Maven artifact com.dsxir:dsxir-checkpoint. One line per file:
 * its name, session id, status number, trial count and whether the canonical re-encoding equals
 * the bytes read.
 */
public final class ReadCheckpoints {
  private ReadCheckpoints() {}

  public static void main(String[] args) throws IOException, ResumeMismatch {
    for (String arg : args) {
      Path path = Path.of(arg);
      byte[] data = Files.readAllBytes(path);
      Checkpoint cp = Checkpoints.decode(data);
      String same = Arrays.equals(Checkpoints.encode(cp), data) ? "identical" : "different";
      String name = path.getFileName().toString().replaceFirst("\\.binpb$", "");
      System.out.println(
          name
              + " session_id=" + cp.getSessionId()
              + " status=" + cp.getStatusValue()
              + " trials=" + cp.getProgress().getTrialLogCount()
              + " reencoded=" + same);
    }
  }
}
