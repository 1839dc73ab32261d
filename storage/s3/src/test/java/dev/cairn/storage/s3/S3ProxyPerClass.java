package dev.cairn.storage.s3;

import java.net.URI;
import org.gaul.s3proxy.auth.AuthenticationType;
import org.gaul.s3proxy.junit.S3ProxyExtension;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Runs one S3Proxy (filesystem blob store, AWS v2/v4 auth) for a whole test class. S3Proxy's own
 * {@link S3ProxyExtension} starts and stops its server around each test; this drives the same
 * extension from the class callbacks instead, so a class pays the start-up once.
 */
final class S3ProxyPerClass implements BeforeAllCallback, AfterAllCallback {
    static final String ACCESS_KEY = "access";
    static final String SECRET_KEY = "secret";

    private final S3ProxyExtension proxy = S3ProxyExtension.builder()
            .withCredentials(AuthenticationType.AWS_V2_OR_V4, ACCESS_KEY, SECRET_KEY)
            .withBlobStoreProvider("filesystem")
            .build();

    @Override
    public void beforeAll(ExtensionContext context) throws Exception {
        proxy.beforeEach(context);
    }

    @Override
    public void afterAll(ExtensionContext context) {
        proxy.afterEach(context);
    }

    URI endpoint() {
        return proxy.getUri();
    }
}
