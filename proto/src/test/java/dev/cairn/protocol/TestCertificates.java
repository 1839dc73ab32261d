package dev.cairn.protocol;

import java.io.IOException;
import java.io.Writer;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.concurrent.atomic.AtomicLong;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.openssl.jcajce.JcaPKCS8Generator;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * Certificates made by the tests themselves (no key is ever committed): a CA, a server certificate
 * for 127.0.0.1/localhost and a client certificate signed by it, and a second, unrelated CA.
 * EC P-256 keys, PEM files (keys in PKCS#8) in the given directory.
 */
public final class TestCertificates {
    private static final AtomicLong SERIAL = new AtomicLong(System.nanoTime());

    /** The CA that signed the server and client certificates. */
    public final Path caCert;
    public final Path serverCert;
    public final Path serverKey;
    public final Path clientCert;
    public final Path clientKey;
    /** A CA that signed nothing here: a client trusting only it must refuse the server. */
    public final Path otherCaCert;
    /** A client certificate signed by the other CA (a mutual-TLS server must refuse it). */
    public final Path strangerCert;
    public final Path strangerKey;

    private TestCertificates(Path dir) {
        caCert = dir.resolve("ca.pem");
        serverCert = dir.resolve("server.pem");
        serverKey = dir.resolve("server.key");
        clientCert = dir.resolve("client.pem");
        clientKey = dir.resolve("client.key");
        otherCaCert = dir.resolve("other-ca.pem");
        strangerCert = dir.resolve("stranger.pem");
        strangerKey = dir.resolve("stranger.key");
    }

    /** Generates the set into {@code dir} (created if missing). */
    public static TestCertificates generate(Path dir) throws IOException {
        Files.createDirectories(dir);
        TestCertificates c = new TestCertificates(dir);
        try {
            KeyPair ca = keyPair();
            X509Certificate caCert = certificate("CN=cairn test CA", ca, "CN=cairn test CA", ca, true);
            write(c.caCert, caCert);
            KeyPair server = keyPair();
            write(c.serverCert, certificate("CN=cairn coordinator", server, "CN=cairn test CA", ca, false));
            write(c.serverKey, new JcaPKCS8Generator(server.getPrivate(), null));
            KeyPair client = keyPair();
            write(c.clientCert, certificate("CN=cairn worker", client, "CN=cairn test CA", ca, false));
            write(c.clientKey, new JcaPKCS8Generator(client.getPrivate(), null));
            KeyPair other = keyPair();
            write(c.otherCaCert, certificate("CN=another CA", other, "CN=another CA", other, true));
            KeyPair stranger = keyPair();
            write(c.strangerCert, certificate("CN=stranger", stranger, "CN=another CA", other, false));
            write(c.strangerKey, new JcaPKCS8Generator(stranger.getPrivate(), null));
        } catch (GeneralSecurityException | OperatorCreationException e) {
            throw new IOException("cannot generate test certificates: " + e, e);
        }
        return c;
    }

    private static KeyPair keyPair() throws GeneralSecurityException {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(256);
        return g.generateKeyPair();
    }

    private static X509Certificate certificate(String subject, KeyPair subjectKeys, String issuer, KeyPair issuerKeys, boolean isCa)
            throws GeneralSecurityException, OperatorCreationException, IOException {
        Instant now = Instant.now();
        X509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(new X500Name(issuer), BigInteger.valueOf(SERIAL.incrementAndGet()),
                Date.from(now.minus(Duration.ofHours(1))), Date.from(now.plus(Duration.ofDays(2))), new X500Name(subject), subjectKeys.getPublic());
        b.addExtension(Extension.basicConstraints, true, new BasicConstraints(isCa));
        if (isCa) {
            b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
        } else {
            b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature | KeyUsage.keyEncipherment));
            b.addExtension(Extension.extendedKeyUsage, false,
                    new ExtendedKeyUsage(new KeyPurposeId[] {KeyPurposeId.id_kp_serverAuth, KeyPurposeId.id_kp_clientAuth}));
            b.addExtension(Extension.subjectAlternativeName, false, new GeneralNames(new GeneralName[] {
                new GeneralName(GeneralName.iPAddress, "127.0.0.1"), new GeneralName(GeneralName.dNSName, "localhost")}));
        }
        return new JcaX509CertificateConverter().getCertificate(b.build(new JcaContentSignerBuilder("SHA256withECDSA").build(issuerKeys.getPrivate())));
    }

    private static void write(Path file, Object pemObject) throws IOException {
        try (Writer w = Files.newBufferedWriter(file, StandardCharsets.US_ASCII); JcaPEMWriter pem = new JcaPEMWriter(w)) {
            if (pemObject instanceof JcaPKCS8Generator g) {
                pem.writeObject(g);
            } else {
                pem.writeObject(pemObject);
            }
        }
    }
}
