package dev.cairn.storage.export;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;

/**
 * An input stream as a channel that fills each buffer as far as the stream goes (unlike
 * {@link java.nio.channels.Channels#newChannel(InputStream)}, which hands over 8 KiB at a time).
 */
final class StreamChannel implements ReadableByteChannel {
    private final InputStream in;
    private byte[] bounce;
    private boolean open = true;

    StreamChannel(InputStream in) {
        this.in = in;
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
        if (!dst.hasRemaining()) {
            return 0;
        }
        int n;
        if (dst.hasArray()) {
            n = in.readNBytes(dst.array(), dst.arrayOffset() + dst.position(), dst.remaining());
            dst.position(dst.position() + n);
        } else {
            if (bounce == null) {
                bounce = new byte[1 << 20];
            }
            n = in.readNBytes(bounce, 0, Math.min(bounce.length, dst.remaining()));
            dst.put(bounce, 0, n);
        }
        return n == 0 ? -1 : n;
    }

    @Override
    public boolean isOpen() {
        return open;
    }

    @Override
    public void close() throws IOException {
        open = false;
        in.close();
    }
}
