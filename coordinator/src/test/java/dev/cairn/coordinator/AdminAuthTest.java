package dev.cairn.coordinator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.cairn.proto.v1.StatusRequest;
import dev.cairn.proto.v1.TriggerSaveRequest;
import dev.cairn.storage.StorageUri;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** With a token set, every admin call must carry it; over a real (Netty) connection. */
class AdminAuthTest {
    @TempDir
    Path dir;

    private Coordinator start(String token) throws Exception {
        StorageUri uri = StorageUri.parse(dir.resolve("run-1").toUri().toString());
        return Coordinator.start(CoordinatorConfig.builder("run-1", 1, uri).token(token).build(), "127.0.0.1", 0);
    }

    @Test
    void adminCallsWithoutOrWithAWrongTokenAreUnauthenticated() throws Exception {
        try (Coordinator c = start("s3cret")) {
            String address = "127.0.0.1:" + c.port();
            for (String token : new String[] {"", "wrong", "s3cre", "s3cretX"}) {
                try (AdminClient client = new AdminClient(address, token)) {
                    assertThatThrownBy(() -> client.stub.status(StatusRequest.getDefaultInstance()))
                            .isInstanceOfSatisfying(StatusRuntimeException.class,
                                    e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAUTHENTICATED));
                    assertThatThrownBy(() -> client.stub.triggerSave(TriggerSaveRequest.getDefaultInstance()))
                            .isInstanceOfSatisfying(StatusRuntimeException.class,
                                    e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAUTHENTICATED));
                }
            }
            try (AdminClient client = new AdminClient(address, "s3cret")) {
                assertThat(client.stub.status(StatusRequest.getDefaultInstance()).getRunId()).isEqualTo("run-1");
            }
        }
    }

    @Test
    void withoutATokenAdminCallsNeedNone() throws Exception {
        try (Coordinator c = start(""); AdminClient client = new AdminClient("127.0.0.1:" + c.port())) {
            assertThat(client.stub.status(StatusRequest.getDefaultInstance()).getWorldSize()).isEqualTo(1);
        }
    }
}
