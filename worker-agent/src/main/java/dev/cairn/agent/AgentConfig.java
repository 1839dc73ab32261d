package dev.cairn.agent;

import static java.util.Objects.requireNonNull;

import dev.cairn.protocol.TlsFiles;
import io.grpc.ChannelCredentials;
import io.grpc.InsecureChannelCredentials;
import java.nio.file.Path;
import java.time.Duration;

/**
 * Settings of a worker agent.
 *
 * @param coordinator {@code host:port} of the coordinator
 * @param runId the run to join; must match the coordinator's
 * @param workerIndex this worker's index, 0 ≤ index &lt; worldSize
 * @param worldSize number of workers; must match the coordinator's
 * @param token shared secret, or empty; sent as call metadata ({@code authorization: Bearer}) and in the join
 * @param channelCredentials plaintext or TLS, for the channel {@link CairnAgent#connect(AgentConfig)}
 *     builds (see {@link Builder#tlsCa} and {@link Builder#tlsClientCert})
 * @param stagingBytes off-heap (direct) memory the agent may hold for staged shards, within the JVM's
 *     direct-memory limit (by default the max heap size); a save larger than this blocks the
 *     trainer until the upload drains it (bounded memory)
 * @param chunkBytes staging is allocated in chunks of this size
 * @param storageOverride storage URI to use instead of the one the coordinator announces, or null
 * @param connectTimeout how long {@link CairnAgent#connect} waits for the coordinator's welcome
 * @param hooks observes phases of every save (tests and chaos inject faults here)
 */
public record AgentConfig(
        String coordinator,
        String runId,
        int workerIndex,
        int worldSize,
        String token,
        ChannelCredentials channelCredentials,
        long stagingBytes,
        int chunkBytes,
        String storageOverride,
        Duration connectTimeout,
        AgentHooks hooks) {
    /** Staging chunk size unless {@link Builder#chunkBytes} says otherwise: 4 MiB. */
    public static final int DEFAULT_CHUNK_BYTES = 4 << 20;

    public AgentConfig {
        requireNonNull(coordinator, "coordinator is null");
        requireNonNull(runId, "runId is null");
        if (!coordinator.matches("[^:\\s]+:\\d{1,5}")) {
            throw new IllegalArgumentException("coordinator address '" + coordinator + "' is not host:port");
        }
        if (worldSize < 1) {
            throw new IllegalArgumentException("world size must be at least 1, was " + worldSize);
        }
        if (workerIndex < 0 || workerIndex >= worldSize) {
            throw new IllegalArgumentException("worker index " + workerIndex + " is outside the world size " + worldSize
                    + " (valid: 0.." + (worldSize - 1) + ")");
        }
        if (chunkBytes < 4096) {
            throw new IllegalArgumentException("chunk size must be at least 4096 bytes, was " + chunkBytes);
        }
        if (stagingBytes < chunkBytes * 2L) {
            throw new IllegalArgumentException("staging budget " + stagingBytes + " must hold at least two chunks of " + chunkBytes + " bytes");
        }
        token = token == null ? "" : token;
        if (!token.chars().allMatch(c -> c > 0x20 && c < 0x7f)) {
            throw new IllegalArgumentException("the token must be printable ASCII without spaces (it travels in a gRPC header)");
        }
        channelCredentials = channelCredentials == null ? InsecureChannelCredentials.create() : channelCredentials;
        requireNonNull(connectTimeout, "connectTimeout is null");
        hooks = hooks == null ? AgentHooks.NONE : hooks;
    }

    public static Builder builder(String coordinator, String runId, int workerIndex, int worldSize) {
        return new Builder(coordinator, runId, workerIndex, worldSize);
    }

    /** Builder; the staging budget defaults to a quarter of the max heap size (off-heap), capped at 1 GiB. */
    public static final class Builder {
        private final String coordinator;
        private final String runId;
        private final int workerIndex;
        private final int worldSize;
        private String token = "";
        private Path tlsCa;
        private Path tlsCert;
        private Path tlsKey;
        private long stagingBytes = Math.min(1L << 30, Runtime.getRuntime().maxMemory() / 4);
        private int chunkBytes = DEFAULT_CHUNK_BYTES;
        private String storageOverride;
        private Duration connectTimeout = Duration.ofSeconds(30);
        private AgentHooks hooks = AgentHooks.NONE;

        private Builder(String coordinator, String runId, int workerIndex, int worldSize) {
            this.coordinator = coordinator;
            this.runId = runId;
            this.workerIndex = workerIndex;
            this.worldSize = worldSize;
        }

        public Builder token(String t) { this.token = t; return this; }
        /** Connect with TLS, trusting the CA certificate(s) in this PEM file (null: plaintext unless a client certificate is set). */
        public Builder tlsCa(Path caPem) { this.tlsCa = caPem; return this; }
        /** Present this certificate (PEM) and PKCS#8 PEM key to a coordinator that requires mutual TLS; implies TLS. */
        public Builder tlsClientCert(Path certPem, Path keyPem) { this.tlsCert = certPem; this.tlsKey = keyPem; return this; }
        public Builder stagingBytes(long b) { this.stagingBytes = b; return this; }
        public Builder chunkBytes(int b) { this.chunkBytes = b; return this; }
        public Builder storageOverride(String uri) { this.storageOverride = uri; return this; }
        public Builder connectTimeout(Duration d) { this.connectTimeout = d; return this; }
        public Builder hooks(AgentHooks h) { this.hooks = h; return this; }

        /**
         * @throws IllegalArgumentException for an invalid setting, naming a missing or invalid TLS file
         */
        public AgentConfig build() {
            ChannelCredentials credentials = TlsFiles.client(tlsCa, tlsCert, tlsKey);
            int chunk = (int) Math.min(chunkBytes, Math.max(4096, stagingBytes / 4));
            return new AgentConfig(coordinator, runId, workerIndex, worldSize, token, credentials, stagingBytes, chunk, storageOverride, connectTimeout, hooks);
        }
    }
}
