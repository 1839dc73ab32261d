package dev.cairn.cli;

import dev.cairn.coordinator.AdminClient;
import dev.cairn.proto.v1.SaveRecord;
import dev.cairn.proto.v1.StatusRequest;
import dev.cairn.proto.v1.StatusResponse;
import io.grpc.StatusRuntimeException;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "status", description = "Ask a running coordinator for its workers, latest checkpoint and recent saves.")
final class StatusCommand implements Callable<Integer> {
    @Option(names = "--coordinator", required = true, paramLabel = "HOST:PORT")
    String coordinator;

    @Option(names = "--token", description = "The coordinator's token (default: \\$CAIRN_TOKEN or none).")
    String token;

    @Override
    public Integer call() {
        try (AdminClient client = new AdminClient(coordinator, token != null ? token : System.getenv().getOrDefault("CAIRN_TOKEN", ""))) {
            StatusResponse s = client.stub.status(StatusRequest.getDefaultInstance());
            System.out.printf("run %s, world size %d, storage %s%n", s.getRunId(), s.getWorldSize(), s.getStorageUri());
            System.out.printf("connected workers: %s%n", s.getConnectedWorkersList());
            System.out.printf("latest checkpoint: %s%n", s.hasLatest() ? "step " + s.getLatest().getStep() + " (save " + s.getLatest().getSaveId() + ")" : "none");
            if (!s.getInFlightPhase().isEmpty()) {
                System.out.printf("in flight: step %d, %s%n", s.getInFlightStep(), s.getInFlightPhase());
            }
            for (SaveRecord r : s.getRecentSavesList()) {
                System.out.printf("  step %-10d %-22s %12d bytes  %s%n", r.getStep(), r.getOutcome(), r.getBytes(), r.getMessage());
            }
            return 0;
        } catch (StatusRuntimeException e) {
            throw new UserError("coordinator " + coordinator + ": " + e.getStatus().getCode() + " " + e.getStatus().getDescription());
        }
    }
}
