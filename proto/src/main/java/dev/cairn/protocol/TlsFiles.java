package dev.cairn.protocol;

import io.grpc.ChannelCredentials;
import io.grpc.InsecureChannelCredentials;
import io.grpc.InsecureServerCredentials;
import io.grpc.ServerCredentials;
import io.grpc.TlsChannelCredentials;
import io.grpc.TlsServerCredentials;
import io.grpc.util.CertificateUtils;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.security.cert.X509Certificate;

/**
 * gRPC transport credentials from PEM files, for the coordinator's server and for every client
 * (agents, the CLI, the toy worker). Every file is read and parsed here, before any socket is
 * opened, so a bad file is reported as one line naming it ({@link IllegalArgumentException})
 * instead of failing at the first handshake. Certificates are X.509 PEM; keys are unencrypted
 * PKCS#8 PEM ({@code -----BEGIN PRIVATE KEY-----}, RSA or EC); {@code openssl pkcs8 -topk8 -nocrypt}
 * converts other key files.
 */
public final class TlsFiles {
    private TlsFiles() {}

    /**
     * Server credentials: plaintext when {@code cert} and {@code key} are both null; TLS with that
     * certificate chain and key otherwise; mutual TLS when {@code clientCa} is given as well
     * (a client must present a certificate signed by it).
     *
     * @throws IllegalArgumentException naming the file that is missing, unreadable or not valid PEM,
     *     or when only one of cert and key is given, or a client CA without them
     */
    public static ServerCredentials server(Path cert, Path key, Path clientCa) {
        if (cert == null && key == null) {
            if (clientCa != null) {
                throw new IllegalArgumentException("--tls-client-ca needs --tls-cert and --tls-key");
            }
            return InsecureServerCredentials.create();
        }
        if (cert == null || key == null) {
            throw new IllegalArgumentException("--tls-cert and --tls-key go together (" + (cert == null ? "--tls-key" : "--tls-cert") + " was given alone)");
        }
        byte[][] pair = keyPair(cert, key);
        try {
            TlsServerCredentials.Builder b = TlsServerCredentials.newBuilder()
                    .keyManager(new ByteArrayInputStream(pair[0]), new ByteArrayInputStream(pair[1]));
            if (clientCa != null) {
                b.trustManager(new ByteArrayInputStream(certificates(clientCa, "client CA certificate")))
                        .clientAuth(TlsServerCredentials.ClientAuth.REQUIRE);
            }
            return b.build();
        } catch (IOException e) {
            throw new IllegalArgumentException("TLS files " + cert + ", " + key + ": " + e.getMessage(), e);
        }
    }

    /**
     * Channel credentials: plaintext when all three are null; TLS otherwise, trusting {@code ca}
     * (or the JVM's default trust store when it is null), and presenting {@code cert}/{@code key}
     * for mutual TLS when given. The server's certificate must name the host the client dials
     * (a DNS or IP subject alternative name).
     *
     * @throws IllegalArgumentException naming the file that is missing, unreadable or not valid PEM,
     *     or when only one of cert and key is given
     */
    public static ChannelCredentials client(Path ca, Path cert, Path key) {
        if (ca == null && cert == null && key == null) {
            return InsecureChannelCredentials.create();
        }
        if ((cert == null) != (key == null)) {
            throw new IllegalArgumentException("--tls-cert and --tls-key go together (" + (cert == null ? "--tls-key" : "--tls-cert") + " was given alone)");
        }
        try {
            TlsChannelCredentials.Builder b = TlsChannelCredentials.newBuilder();
            if (ca != null) {
                b.trustManager(new ByteArrayInputStream(certificates(ca, "CA certificate")));
            }
            if (cert != null) {
                byte[][] pair = keyPair(cert, key);
                b.keyManager(new ByteArrayInputStream(pair[0]), new ByteArrayInputStream(pair[1]));
            }
            return b.build();
        } catch (IOException e) {
            throw new IllegalArgumentException("TLS files: " + e.getMessage(), e);
        }
    }

    /** The bytes of a certificate chain and of its key, both validated, and the key checked to belong to the chain's first certificate. */
    private static byte[][] keyPair(Path cert, Path key) {
        byte[] certBytes = certificates(cert, "certificate");
        byte[] keyBytes = read(key, "private key");
        PrivateKey privateKey;
        try {
            privateKey = CertificateUtils.getPrivateKey(new ByteArrayInputStream(keyBytes));
        } catch (IOException | GeneralSecurityException | RuntimeException e) {
            throw new IllegalArgumentException("TLS private key " + key + " is not an unencrypted PKCS#8 PEM key (BEGIN PRIVATE KEY): " + reason(e), e);
        }
        if (privateKey == null) {
            throw new IllegalArgumentException("TLS private key " + key + " holds no PEM private key (BEGIN PRIVATE KEY)");
        }
        X509Certificate leaf = parse(cert, certBytes)[0];
        if (!belongTogether(privateKey, leaf.getPublicKey())) {
            throw new IllegalArgumentException("TLS private key " + key + " does not belong to the certificate in " + cert);
        }
        return new byte[][] {certBytes, keyBytes};
    }

    private static byte[] certificates(Path file, String what) {
        byte[] bytes = read(file, what);
        parse(file, bytes);
        return bytes;
    }

    private static X509Certificate[] parse(Path file, byte[] bytes) {
        X509Certificate[] certs;
        try {
            certs = CertificateUtils.getX509Certificates(new ByteArrayInputStream(bytes));
        } catch (GeneralSecurityException | RuntimeException e) {
            throw new IllegalArgumentException("TLS certificate file " + file + " is not valid PEM: " + reason(e), e);
        }
        if (certs.length == 0) {
            throw new IllegalArgumentException("TLS certificate file " + file + " holds no PEM certificate (BEGIN CERTIFICATE)");
        }
        return certs;
    }

    private static byte[] read(Path file, String what) {
        try {
            byte[] bytes = Files.readAllBytes(file);
            if (bytes.length == 0) {
                throw new IllegalArgumentException("TLS " + what + " file " + file + " is empty");
            }
            if (!new String(bytes, StandardCharsets.US_ASCII).contains("-----BEGIN ")) {
                throw new IllegalArgumentException("TLS " + what + " file " + file + " is not PEM (no -----BEGIN line)");
            }
            return bytes;
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException("TLS " + what + " file " + file + " does not exist", e);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read TLS " + what + " file " + file + ": " + reason(e), e);
        }
    }

    /** Signs a few bytes with the private key and verifies them with the certificate's public key. */
    private static boolean belongTogether(PrivateKey privateKey, PublicKey publicKey) {
        String algorithm = switch (privateKey.getAlgorithm()) {
            case "RSA" -> "SHA256withRSA";
            case "EC" -> "SHA256withECDSA";
            case "Ed25519", "EdDSA" -> "Ed25519";
            default -> null;
        };
        if (algorithm == null || !privateKey.getAlgorithm().equals(publicKey.getAlgorithm())) {
            return algorithm == null; // an algorithm we cannot check: the handshake will tell
        }
        try {
            byte[] probe = "cairn".getBytes(StandardCharsets.US_ASCII);
            Signature signer = Signature.getInstance(algorithm);
            signer.initSign(privateKey);
            signer.update(probe);
            byte[] signature = signer.sign();
            Signature verifier = Signature.getInstance(algorithm);
            verifier.initVerify(publicKey);
            verifier.update(probe);
            return verifier.verify(signature);
        } catch (GeneralSecurityException e) {
            return false;
        }
    }

    private static String reason(Exception e) {
        return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage().lines().findFirst().orElse("");
    }
}
