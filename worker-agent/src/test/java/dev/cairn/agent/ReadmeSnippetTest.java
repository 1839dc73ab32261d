package dev.cairn.agent;

import static org.assertj.core.api.Assertions.assertThat;

// README-IMPORTS-BEGIN
import dev.cairn.agent.AgentConfig;
import dev.cairn.agent.CairnAgent;
import dev.cairn.agent.RestoredCheckpoint;
import java.time.Duration;
import java.util.Optional;
// README-IMPORTS-END
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The README's Java snippet, verbatim, compiled by the build; the test checks that the README
 * still shows exactly this text.
 */
class ReadmeSnippetTest {
    private int rank;
    private int worldSize;
    private long totalSteps;
    private float[] kernel = {1f, 2f, 3f};
    private float[] table = {0.5f, -0.5f};
    private double loss = 0.25;
    private final List<Long> trained = new ArrayList<>();

    private void train(long step) {
        trained.add(step);
        kernel[0] = step;
    }

    private long load(RestoredCheckpoint r) {
        try {
            ByteBuffer b = ByteBuffer.wrap(r.read("model/dense_1/kernel")).order(ByteOrder.LITTLE_ENDIAN);
            b.asFloatBuffer().get(kernel);
            return r.step();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @SuppressWarnings("try")
    void readmeSnippet() throws Exception {
        // README-BEGIN
        AgentConfig config = AgentConfig.builder("chief:7400", "run-7", rank, worldSize).build();
        try (CairnAgent agent = CairnAgent.connect(config)) {
            agent.installPreemptionHook(Duration.ofSeconds(30));        // SIGTERM -> emergency save
            Optional<RestoredCheckpoint> restored = agent.restoreLatest();
            long step = restored.isPresent() ? load(restored.get()) : 0L;
            while (step < totalSteps) {
                train(++step);
                if (agent.isSaveDue(step)) {
                    agent.save(step, snap -> {                           // blocks only for the copy
                        snap.put("model/dense_1/kernel", kernel);        // float[]: this worker's shard
                        snap.putReplicated("model/embedding", table);    // mirrored: stored once
                        snap.metadata("loss", loss);
                    });
                }
            }
        }                                                                // close() waits for uploads
        // README-END
    }

    @Test
    void theReadmeShowsThisSnippetVerbatim() throws IOException {
        String source = Files.readString(Path.of("src/test/java/dev/cairn/agent/ReadmeSnippetTest.java"));
        String readme = Files.readString(Path.of("../README.md"));
        String imports = between(source, "// README-IMPORTS-BEGIN\n", "// README-IMPORTS-END");
        String body = between(source, "        // README-BEGIN\n", "        // README-END").replaceAll("(?m)^        ", "");
        assertThat(readme).contains("```java\n" + imports + "\n" + body + "```");
    }

    private static String between(String s, String begin, String end) {
        int from = s.indexOf(begin) + begin.length();
        return s.substring(from, s.indexOf(end, from));
    }
}
