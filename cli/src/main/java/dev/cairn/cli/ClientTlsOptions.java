package dev.cairn.cli;

import dev.cairn.coordinator.AdminClient;
import dev.cairn.protocol.TlsFiles;
import io.grpc.StatusRuntimeException;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** {@code --tls-ca/--tls-cert/--tls-key}: how {@code status} and {@code trigger} reach a TLS coordinator. */
final class ClientTlsOptions {
    @Option(names = "--tls-ca", paramLabel = "FILE", description = "Use TLS, trusting the CA certificate(s) in this PEM file.")
    Path ca;

    @Option(names = "--tls-cert", paramLabel = "FILE", description = "Client certificate (PEM) for a coordinator that requires mutual TLS; with --tls-key.")
    Path cert;

    @Option(names = "--tls-key", paramLabel = "FILE", description = "The client certificate's private key (PKCS#8 PEM).")
    Path key;

    /** An admin client for {@code coordinator}; a null {@code token} means $CAIRN_TOKEN or none. Bad TLS files are bad input. */
    AdminClient connect(String coordinator, String token) {
        return new AdminClient(coordinator, token != null ? token : System.getenv().getOrDefault("CAIRN_TOKEN", ""),
                TlsFiles.client(ca, cert, key));
    }

    /** One line for a failed call, with the transport's reason (a refused handshake, an unknown CA). */
    static UserError failure(String coordinator, StatusRuntimeException e) {
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        String description = e.getStatus().getDescription();
        String reason = root == e || root.getMessage() == null ? "" : " (" + root.getMessage().lines().findFirst().orElse("") + ")";
        return new UserError("coordinator " + coordinator + ": " + e.getStatus().getCode()
                + (description == null ? "" : " " + description.lines().findFirst().orElse("")) + reason);
    }
}
