package dev.cairn.storage.s3;

import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.RegionReadContractTest;
import java.io.IOException;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.extension.RegisterExtension;
import software.amazon.awssdk.services.s3.S3Client;

/** Region reads (ranged GETs of only the overlapping bytes) against S3Proxy, one server per class. */
class S3RegionReadTest extends RegionReadContractTest {
    private static final String BUCKET = "cairn-regions";

    @RegisterExtension
    static final S3ProxyPerClass S3_PROXY = new S3ProxyPerClass();

    private static final AtomicInteger TEST_COUNTER = new AtomicInteger();

    @BeforeAll
    static void createBucket() {
        try (S3Client admin = S3CheckpointStoreTest.adminClient(S3_PROXY.endpoint())) {
            admin.createBucket(b -> b.bucket(BUCKET));
        }
    }

    /** Each ranged GET costs S3Proxy ~10-30 ms on a 2-core machine. */
    @Override
    protected int randomRegions() {
        return 40;
    }

    @Override
    protected CheckpointStore openStore() throws IOException {
        return CheckpointStores.open(S3CheckpointStoreTest.uri(S3_PROXY.endpoint(), BUCKET, "regions-" + TEST_COUNTER.incrementAndGet(), ""));
    }
}
