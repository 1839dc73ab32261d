package dev.cairn.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cairn.coordinator.AdminClient;
import dev.cairn.proto.v1.SaveRecord;
import dev.cairn.proto.v1.StatusRequest;
import dev.cairn.proto.v1.StatusResponse;
import io.grpc.StatusRuntimeException;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "status", description = "Ask a running coordinator for its workers, latest checkpoint and recent saves.")
final class StatusCommand implements Callable<Integer> {
    @Option(names = "--coordinator", required = true, paramLabel = "HOST:PORT")
    String coordinator;

    @Option(names = "--token", description = "The coordinator's token (default: \\$CAIRN_TOKEN or none).")
    String token;

    @Mixin
    ClientTlsOptions tls;

    @Option(names = "--json", description = "Print one JSON object (fields in docs/operations.md).")
    boolean json;

    @Override
    public Integer call() {
        try (AdminClient client = tls.connect(coordinator, token)) {
            StatusResponse s = client.stub.status(StatusRequest.getDefaultInstance());
            if (json) {
                JsonOutput.print(toJson(s));
                return 0;
            }
            System.out.printf("run %s, world size %d, storage %s%n", s.getRunId(), s.getWorldSize(), s.getStorageUri());
            System.out.printf("connected workers: %s%n", s.getConnectedWorkersList());
            System.out.printf("latest checkpoint: %s%n", s.hasLatest() ? "step " + s.getLatest().getStep() + " (save " + s.getLatest().getSaveId() + ")" : "none");
            if (!s.getInFlightPhase().isEmpty()) {
                System.out.printf("in flight: step %d, %s%n", s.getInFlightStep(), s.getInFlightPhase());
            }
            if (s.getPendingTargetStep() >= 0) {
                System.out.printf("pending save target: step %d (%s)%n", s.getPendingTargetStep(), s.getPendingTargetReason());
            }
            for (SaveRecord r : s.getRecentSavesList()) {
                System.out.printf("  step %-10d %-22s %12d bytes  %s%n", r.getStep(), r.getOutcome(), r.getBytes(), r.getMessage());
            }
            return 0;
        } catch (StatusRuntimeException e) {
            throw ClientTlsOptions.failure(coordinator, e);
        }
    }

    private ObjectNode toJson(StatusResponse s) {
        ObjectNode n = JsonOutput.object();
        n.put("coordinator", coordinator);
        n.put("runId", s.getRunId());
        n.put("worldSize", s.getWorldSize());
        n.put("storage", s.getStorageUri());
        ArrayNode workers = n.putArray("connectedWorkers");
        s.getConnectedWorkersList().forEach(workers::add);
        if (s.hasLatest()) {
            n.putObject("latest").put("step", s.getLatest().getStep()).put("saveId", s.getLatest().getSaveId());
        } else {
            n.putNull("latest");
        }
        if (s.getInFlightPhase().isEmpty()) {
            n.putNull("inFlight");
        } else {
            n.putObject("inFlight").put("step", s.getInFlightStep()).put("phase", s.getInFlightPhase());
        }
        if (s.getPendingTargetStep() >= 0) {
            n.putObject("pendingTarget").put("step", s.getPendingTargetStep()).put("reason", s.getPendingTargetReason());
        } else {
            n.putNull("pendingTarget");
        }
        ArrayNode saves = n.putArray("recentSaves");
        for (SaveRecord r : s.getRecentSavesList()) {
            saves.addObject().put("step", r.getStep()).put("saveId", r.getSaveId()).put("outcome", r.getOutcome())
                    .put("message", r.getMessage()).put("bytes", r.getBytes())
                    .put("maxStallMicros", r.getMaxStallMicros()).put("maxUploadMicros", r.getMaxUploadMicros());
        }
        return n;
    }
}
