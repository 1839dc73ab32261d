package dev.cairn.cli;

import dev.cairn.coordinator.AdminClient;
import dev.cairn.proto.v1.TriggerSaveRequest;
import io.grpc.StatusRuntimeException;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "trigger", description = "Ask a running coordinator to save now (at a step just ahead of the fastest worker).")
final class TriggerCommand implements Callable<Integer> {
    @Option(names = "--coordinator", required = true, paramLabel = "HOST:PORT")
    String coordinator;

    @Option(names = "--token", description = "The coordinator's token (default: \\$CAIRN_TOKEN or none).")
    String token;

    @Mixin
    ClientTlsOptions tls;

    @Option(names = "--reason", defaultValue = "operator request")
    String reason;

    @Option(names = "--json", description = "Print one JSON object: {coordinator, targetStep, reason}.")
    boolean json;

    @Override
    public Integer call() {
        try (AdminClient client = tls.connect(coordinator, token)) {
            long step = client.stub.triggerSave(TriggerSaveRequest.newBuilder().setReason(reason).build()).getTargetStep();
            if (json) {
                JsonOutput.print(JsonOutput.object().put("coordinator", coordinator).put("targetStep", step).put("reason", reason));
            } else {
                System.out.printf("workers will save at step %d%n", step);
            }
            return 0;
        } catch (StatusRuntimeException e) {
            throw ClientTlsOptions.failure(coordinator, e);
        }
    }
}
