package dev.cairn.coordinator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.cairn.proto.v1.CoordinatorMessage;
import dev.cairn.proto.v1.ListCheckpointsRequest;
import dev.cairn.proto.v1.StatusRequest;
import dev.cairn.proto.v1.TriggerSaveRequest;
import dev.cairn.storage.StorageUri;
import io.grpc.InsecureChannelCredentials;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** With a token set, every call must carry it: admin calls and worker sessions, over a real (Netty) connection. */
class TokenAuthTest {
    private static final String RUN = "run-1";

    @TempDir
    Path dir;

    private Coordinator start(String token) throws Exception {
        StorageUri uri = StorageUri.parse(dir.resolve(RUN).toUri().toString());
        return Coordinator.start(CoordinatorConfig.builder(RUN, 2, uri).token(token).build(), "127.0.0.1", 0);
    }

    @Test
    void adminCallsWithoutOrWithAWrongTokenAreUnauthenticated() throws Exception {
        try (Coordinator c = start("s3cret")) {
            String address = "127.0.0.1:" + c.port();
            for (String token : new String[] {"", "wrong", "s3cre", "s3cretX"}) {
                try (AdminClient client = new AdminClient(address, token)) {
                    for (Runnable call : new Runnable[] {
                        () -> client.stub.status(StatusRequest.getDefaultInstance()),
                        () -> client.stub.triggerSave(TriggerSaveRequest.getDefaultInstance()),
                        () -> client.stub.listCheckpoints(ListCheckpointsRequest.getDefaultInstance())}) {
                        assertThatThrownBy(call::run).isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                            assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAUTHENTICATED);
                            assertThat(e.getStatus().getDescription()).doesNotContain("s3cret");
                        });
                    }
                }
            }
            try (AdminClient client = new AdminClient(address, "s3cret")) {
                assertThat(client.stub.status(StatusRequest.getDefaultInstance()).getRunId()).isEqualTo(RUN);
            }
        }
    }

    @Test
    void withoutATokenAdminCallsNeedNone() throws Exception {
        try (Coordinator c = start(""); AdminClient client = new AdminClient("127.0.0.1:" + c.port())) {
            assertThat(client.stub.status(StatusRequest.getDefaultInstance()).getWorldSize()).isEqualTo(2);
        }
    }

    @Test
    void aSessionCarriesTheTokenInItsMetadataOrInItsJoin() throws Exception {
        try (Coordinator c = start("s3cret")) {
            // the header alone, and the join's field alone (protocol v1 clients)
            try (WireClient w = new WireClient(c.port(), InsecureChannelCredentials.create(), "s3cret")) {
                assertThat(w.joinAndAwait(WireClient.join(RUN, 2, 0, ""))).isInstanceOfSatisfying(CoordinatorMessage.class,
                        m -> assertThat(m.hasWelcome()).isTrue());
            }
            try (WireClient w = new WireClient(c.port(), InsecureChannelCredentials.create(), "")) {
                assertThat(w.joinAndAwait(WireClient.join(RUN, 2, 1, "s3cret"))).isInstanceOfSatisfying(CoordinatorMessage.class,
                        m -> assertThat(m.hasWelcome()).isTrue());
            }
        }
    }

    @Test
    void aSessionWithAWrongOrMissingTokenIsUnauthenticated() throws Exception {
        try (Coordinator c = start("s3cret")) {
            String[][] cases = {
                {"", ""},             // none at all
                {"", "wrong"},        // wrong join field, no header
                {"wrong", ""},        // wrong header
                {"wrong", "s3cret"},  // wrong header, right field: the header is checked first
                {"s3cret", "wrong"},  // right header, contradicting field
            };
            for (String[] cs : cases) {
                try (WireClient w = new WireClient(c.port(), InsecureChannelCredentials.create(), cs[0])) {
                    assertThat(w.joinAndAwait(WireClient.join(RUN, 2, 0, cs[1])))
                            .as("header '%s', join token '%s'", cs[0], cs[1])
                            .isInstanceOfSatisfying(Status.class, s -> {
                                assertThat(s.getCode()).isEqualTo(Status.Code.UNAUTHENTICATED);
                                assertThat(s.getDescription()).doesNotContain("s3cret");
                            });
                }
            }
            assertThat(c.connectedWorkers()).isEmpty();
        }
    }
}
