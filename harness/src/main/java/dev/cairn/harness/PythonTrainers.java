package dev.cairn.harness;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The real Python trainer processes of {@code cairn bench --python}: {@code python3 -m cairn._bench}
 * (python/cairn/_bench.py), one per worker, each with its own sidecar ({@code cairn agent}, started
 * by the package from this jar). The bench sends every trainer the same command on stdin and reads
 * one JSON answer line from each; the trainers run the command at the same time.
 */
final class PythonTrainers implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final List<Process> processes = new ArrayList<>();
    private final List<Writer> stdins = new ArrayList<>();
    private final List<BufferedReader> stdouts = new ArrayList<>();
    private final List<Path> logs = new ArrayList<>();
    /** Each trainer's first answer: {@code bytes} of state and the torch version (or false). */
    final List<JsonNode> hello = new ArrayList<>();

    /**
     * Starts {@code workers} trainers against the coordinator at {@code address}.
     *
     * @param args the driver's arguments after {@code --rank}/{@code --world} (shard size, mirrored, ...)
     */
    PythonTrainers(String python, String address, String runId, int workers, List<String> args, Path dir) throws IOException {
        Path jar = ownJar();
        String pythonPath = packageDir(jar);
        Files.createDirectories(dir);
        for (int rank = 0; rank < workers; rank++) {
            List<String> command = new ArrayList<>(List.of(python, "-m", "cairn._bench", "--coordinator", address, "--run-id", runId,
                    "--rank", Integer.toString(rank), "--world", Integer.toString(workers), "--dir", dir.toString()));
            command.addAll(args);
            ProcessBuilder pb = new ProcessBuilder(command);
            Map<String, String> env = pb.environment();
            env.put("CAIRN_JAR", jar.toString());
            env.putIfAbsent("CAIRN_JAVA_OPTS", "-Xmx512m");
            env.put("OMP_NUM_THREADS", "1");
            if (pythonPath != null) {
                String old = env.get("PYTHONPATH");
                env.put("PYTHONPATH", old == null || old.isEmpty() ? pythonPath : pythonPath + ":" + old);
            }
            Path log = dir.resolve("trainer-" + rank + ".log");
            pb.redirectError(log.toFile());
            logs.add(log);
            Process p = pb.start();
            processes.add(p);
            stdins.add(new OutputStreamWriter(p.getOutputStream(), StandardCharsets.UTF_8));
            stdouts.add(new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8)));
        }
        for (int rank = 0; rank < workers; rank++) {
            hello.add(answer(rank, "start"));
        }
    }

    /** Sends {@code command} to every trainer, then reads every answer; an {@code error} field is returned, not thrown. */
    List<JsonNode> all(String command) throws IOException {
        for (Writer w : stdins) {
            w.write(command + "\n");
            w.flush();
        }
        List<JsonNode> answers = new ArrayList<>();
        for (int rank = 0; rank < processes.size(); rank++) {
            answers.add(answer(rank, command));
        }
        return answers;
    }

    /** The largest {@code ms} of the answers (the round's time: trainers run in lockstep). */
    static double maxMs(List<JsonNode> answers, String field) {
        return answers.stream().mapToDouble(a -> a.path(field).asDouble()).max().orElse(0);
    }

    private JsonNode answer(int rank, String command) throws IOException {
        String line = stdouts.get(rank).readLine();
        if (line == null) {
            throw new IOException("Python trainer " + rank + " exited during '" + command + "': " + tail(logs.get(rank)));
        }
        JsonNode node = JSON.readTree(line);
        if (node.has("error") && !command.equals("dcp")) {
            throw new IOException("Python trainer " + rank + " failed '" + command + "': " + node.get("error").asText());
        }
        return node;
    }

    private static String tail(Path log) {
        try {
            List<String> lines = Files.readAllLines(log);
            return String.join(" | ", lines.subList(Math.max(0, lines.size() - 5), lines.size()));
        } catch (IOException e) {
            return "(no log: " + e + ")";
        }
    }

    /** The jar this class runs from (the sidecars are started from it). */
    private static Path ownJar() {
        try {
            Path p = Path.of(PythonTrainers.class.getProtectionDomain().getCodeSource().getLocation().toURI());
            if (Files.isRegularFile(p) && p.toString().endsWith(".jar")) {
                return p;
            }
        } catch (URISyntaxException | SecurityException e) {
            // fall through to CAIRN_JAR
        }
        String env = System.getenv("CAIRN_JAR");
        if (env != null && Files.isRegularFile(Path.of(env))) {
            return Path.of(env).toAbsolutePath();
        }
        throw new IllegalArgumentException("--python needs cairn.jar for the sidecars: run bench from the jar or set CAIRN_JAR");
    }

    /** The repository's {@code python/} beside {@code cli/target/cairn.jar}, or null (then {@code cairn} must be installed). */
    private static String packageDir(Path jar) {
        for (Path p = jar.getParent(); p != null; p = p.getParent()) {
            if (Files.isRegularFile(p.resolve("python/cairn/_bench.py"))) {
                return p.resolve("python").toString();
            }
        }
        return null;
    }

    /** Sends {@code quit} (each trainer closes its manager; its sidecar exits), then waits for the processes. */
    @Override
    public void close() {
        for (int rank = 0; rank < processes.size(); rank++) {
            try {
                stdins.get(rank).write("quit\n");
                stdins.get(rank).close();
            } catch (IOException e) {
                // the trainer already ended
            }
        }
        for (Process p : processes) {
            try {
                if (!p.waitFor(60, TimeUnit.SECONDS)) {
                    p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                p.destroyForcibly();
            }
        }
    }
}
