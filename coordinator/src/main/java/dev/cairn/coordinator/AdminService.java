package dev.cairn.coordinator;

import dev.cairn.proto.v1.AdminServiceGrpc;
import dev.cairn.proto.v1.ListCheckpointsRequest;
import dev.cairn.proto.v1.ListCheckpointsResponse;
import dev.cairn.proto.v1.StatusRequest;
import dev.cairn.proto.v1.StatusResponse;
import dev.cairn.proto.v1.TriggerSaveRequest;
import dev.cairn.proto.v1.TriggerSaveResponse;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;

/** The admin gRPC service: status, the committed checkpoints, and operator-triggered saves. */
final class AdminService extends AdminServiceGrpc.AdminServiceImplBase {
    private final CoordinatorConfig config;
    private final EventLoop loop;
    private final SaveCoordinator machine;
    private final CheckpointBook book;

    AdminService(CoordinatorConfig config, EventLoop loop, SaveCoordinator machine, CheckpointBook book) {
        this.config = config;
        this.loop = loop;
        this.machine = machine;
        this.book = book;
    }

    @Override
    public void status(StatusRequest request, StreamObserver<StatusResponse> out) {
        loop.post(() -> {
            StatusResponse.Builder b = StatusResponse.newBuilder()
                    .setRunId(config.runId())
                    .setWorldSize(config.worldSize())
                    .setStorageUri(config.storage().toString())
                    .addAllConnectedWorkers(machine.connected())
                    .setInFlightPhase(machine.phase().map(Enum::name).orElse(""))
                    .setInFlightStep(machine.inFlightStep())
                    .setPendingTargetStep(machine.pendingTargetStep())
                    .setPendingTargetReason(machine.pendingTargetReason());
            machine.latest().ifPresent(b::setLatest);
            for (SaveRecord r : machine.history()) {
                b.addRecentSaves(dev.cairn.proto.v1.SaveRecord.newBuilder().setStep(r.step()).setSaveId(r.saveId())
                        .setOutcome(r.outcome().name()).setMessage(r.message()).setBytes(r.bytes())
                        .setMaxStallMicros(r.maxStallMicros()).setMaxUploadMicros(r.maxUploadMicros()));
            }
            out.onNext(b.build());
            out.onCompleted();
        });
    }

    @Override
    public void listCheckpoints(ListCheckpointsRequest request, StreamObserver<ListCheckpointsResponse> out) {
        loop.post(() -> {
            out.onNext(ListCheckpointsResponse.newBuilder().addAllCheckpoints(book.kept()).build());
            out.onCompleted();
        });
    }

    @Override
    public void triggerSave(TriggerSaveRequest request, StreamObserver<TriggerSaveResponse> out) {
        if (request.getReason().length() > ProtocolLimits.MAX_MESSAGE_CHARS) {
            out.onError(Status.INVALID_ARGUMENT.withDescription("trigger reason is longer than "
                    + ProtocolLimits.MAX_MESSAGE_CHARS + " characters").asRuntimeException());
            return;
        }
        loop.post(() -> {
            if (machine.connected().size() < config.worldSize()) {
                out.onError(Status.FAILED_PRECONDITION.withDescription("run " + config.runId() + " has "
                        + machine.connected().size() + " of " + config.worldSize() + " workers connected").asRuntimeException());
                return;
            }
            long step = machine.trigger(request.getReason().isEmpty() ? "operator request" : LogSafe.truncate(request.getReason()));
            if (step < 0) {
                out.onError(Status.OUT_OF_RANGE.withDescription("run " + config.runId()
                        + " is too close to the largest step (2^62) for another save").asRuntimeException());
                return;
            }
            out.onNext(TriggerSaveResponse.newBuilder().setTargetStep(step).build());
            out.onCompleted();
        });
    }
}
