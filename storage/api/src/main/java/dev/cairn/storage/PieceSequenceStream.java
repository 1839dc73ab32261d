package dev.cairn.storage;

import java.io.IOException;
import java.io.InputStream;
import java.util.Iterator;
import java.util.List;

/**
 * The pieces of one entry read in turn, each opened only when the previous one is exhausted.
 * Unlike {@link java.io.SequenceInputStream} it opens nothing in its constructor or on
 * {@link #close()}, and a piece that fails to open surfaces as the store's own
 * {@link IOException} (e.g. {@link NoSuchObjectException}) from {@code read}.
 */
final class PieceSequenceStream<T> extends InputStream {
    /** Opens one piece. */
    interface Opener<T> {
        InputStream open(T piece) throws IOException;
    }

    private final Iterator<T> pieces;
    private final Opener<? super T> opener;
    private InputStream current;
    private boolean closed;

    PieceSequenceStream(List<T> pieces, Opener<? super T> opener) {
        this.pieces = pieces.iterator();
        this.opener = opener;
    }

    @Override
    public int read() throws IOException {
        byte[] one = new byte[1];
        int n;
        do {
            n = read(one, 0, 1);
        } while (n == 0);
        return n < 0 ? -1 : one[0] & 0xff;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        if (closed) {
            throw new IOException("stream closed");
        }
        if (len == 0) {
            return 0;
        }
        while (true) {
            if (current == null) {
                if (!pieces.hasNext()) {
                    return -1;
                }
                current = opener.open(pieces.next());
            }
            int n = current.read(b, off, len);
            if (n >= 0) {
                return n;
            }
            current.close();
            current = null;
        }
    }

    @Override
    public void close() throws IOException {
        closed = true;
        if (current != null) {
            InputStream c = current;
            current = null;
            c.close();
        }
    }
}
