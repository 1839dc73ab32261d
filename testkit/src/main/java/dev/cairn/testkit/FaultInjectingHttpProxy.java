package dev.cairn.testkit;

import static java.nio.charset.StandardCharsets.ISO_8859_1;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A minimal HTTP/1.1 relay on loopback in front of a real S3 server that can fail chosen requests
 * the way networks and S3 do: a connection reset, a 503 SlowDown, a 500, a response lost after the
 * server applied the request, or no answer at all. Requests without an armed fault pass through
 * unchanged. Understands exactly the framing the AWS SDK and S3Proxy use (Content-Length and
 * chunked bodies, {@code Expect: 100-continue}, HEAD). Used by {@code cairn chaos --backend s3} between
 * the coordinator/agents and the embedded S3Proxy and by the S3 store's failure tests.
 */
public final class FaultInjectingHttpProxy implements AutoCloseable {

    public enum Fault { CONNECTION_RESET, SLOW_DOWN_503, INTERNAL_ERROR_500, LOSE_RESPONSE, NO_ANSWER }

    private record Armed(String method, Fault fault) {}

    private final ServerSocket server;
    private final int upstreamPort;
    private final Queue<Armed> armed = new ConcurrentLinkedQueue<>();
    private final AtomicInteger injected = new AtomicInteger();
    private final List<Socket> sockets = java.util.Collections.synchronizedList(new ArrayList<>());
    private volatile boolean closed;

    public FaultInjectingHttpProxy(URI upstream) throws IOException {
        this.upstreamPort = upstream.getPort();
        this.server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        Thread acceptor = new Thread(this::acceptLoop, "fault-proxy-accept");
        acceptor.setDaemon(true);
        acceptor.start();
    }

    public URI uri() {
        return URI.create("http://127.0.0.1:" + server.getLocalPort());
    }

    /** Fails the next requests with this HTTP method, one fault each, in order. */
    public void failNext(String method, Fault... faults) {
        for (Fault f : faults) {
            armed.add(new Armed(method, f));
        }
    }

    /** Disarms every fault not injected yet. */
    public void clear() {
        armed.clear();
    }

    public int faultsInjected() {
        return injected.get();
    }

    public int faultsPending() {
        return armed.size();
    }

    private Fault take(String method) {
        Armed next = armed.peek();
        if (next != null && next.method().equals(method) && armed.remove(next)) {
            injected.incrementAndGet();
            return next.fault();
        }
        return null;
    }

    private void acceptLoop() {
        while (!closed) {
            try {
                Socket client = server.accept();
                sockets.add(client);
                Thread t = new Thread(() -> serve(client), "fault-proxy-conn");
                t.setDaemon(true);
                t.start();
            } catch (IOException e) {
                return;
            }
        }
    }

    private void serve(Socket client) {
        Socket upstream = null;
        try (client) {
            InputStream in = new BufferedInputStream(client.getInputStream());
            OutputStream out = client.getOutputStream();
            while (true) {
                List<String> head = readHead(in);
                if (head == null) {
                    return;
                }
                String method = head.get(0).split(" ")[0];
                if (header(head, "expect") != null) {
                    out.write("HTTP/1.1 100 Continue\r\n\r\n".getBytes(ISO_8859_1));
                    out.flush();
                    head.removeIf(h -> h.toLowerCase(Locale.ROOT).startsWith("expect:"));
                }
                byte[] body = readBody(in, head, false);
                Fault fault = take(method);
                if (fault == Fault.CONNECTION_RESET) {
                    client.setSoLinger(true, 0);
                    return;
                }
                if (fault == Fault.SLOW_DOWN_503 || fault == Fault.INTERNAL_ERROR_500) {
                    boolean slow = fault == Fault.SLOW_DOWN_503;
                    String xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>" + (slow ? "SlowDown" : "InternalError")
                            + "</Code><Message>injected</Message></Error>";
                    String status = slow ? "503 Slow Down" : "500 Internal Server Error";
                    out.write(("HTTP/1.1 " + status + "\r\nContent-Type: application/xml\r\nContent-Length: " + xml.length()
                            + "\r\nConnection: close\r\n\r\n" + xml).getBytes(ISO_8859_1));
                    out.flush();
                    return;
                }
                if (fault == Fault.NO_ANSWER) {
                    while (in.read() >= 0) {
                        // hold the connection until the client gives up
                    }
                    return;
                }
                if (upstream == null) {
                    upstream = new Socket(InetAddress.getLoopbackAddress(), upstreamPort);
                    sockets.add(upstream);
                }
                OutputStream up = upstream.getOutputStream();
                up.write(String.join("\r\n", head).concat("\r\n\r\n").getBytes(ISO_8859_1));
                up.write(body);
                up.flush();
                InputStream upIn = new BufferedInputStream(upstream.getInputStream());
                List<String> responseHead = readHead(upIn);
                if (responseHead == null) {
                    return;
                }
                byte[] responseBody = readBody(upIn, responseHead, method.equals("HEAD"));
                if (fault == Fault.LOSE_RESPONSE) {
                    client.setSoLinger(true, 0);
                    return;
                }
                out.write(String.join("\r\n", responseHead).concat("\r\n\r\n").getBytes(ISO_8859_1));
                out.write(responseBody);
                out.flush();
                if ("close".equalsIgnoreCase(header(responseHead, "connection"))) {
                    return;
                }
            }
        } catch (IOException e) {
            // the client or server went away
        } finally {
            if (upstream != null) {
                try {
                    upstream.close();
                } catch (IOException ignored) {
                    // closing anyway
                }
            }
        }
    }

    /** The start line and headers, or null at a clean end of stream. */
    private static List<String> readHead(InputStream in) throws IOException {
        List<String> lines = new ArrayList<>();
        ByteArrayOutputStream line = new ByteArrayOutputStream();
        int b;
        while ((b = in.read()) >= 0) {
            if (b == '\n') {
                String text = line.toString(ISO_8859_1).replaceAll("\r$", "");
                line.reset();
                if (text.isEmpty()) {
                    return lines;
                }
                lines.add(text);
            } else {
                line.write(b);
            }
        }
        if (lines.isEmpty() && line.size() == 0) {
            return null;
        }
        throw new EOFException("connection closed inside an HTTP head");
    }

    private static String header(List<String> head, String name) {
        for (String h : head.subList(1, head.size())) {
            int colon = h.indexOf(':');
            if (colon > 0 && h.substring(0, colon).trim().equalsIgnoreCase(name)) {
                return h.substring(colon + 1).trim();
            }
        }
        return null;
    }

    private static byte[] readBody(InputStream in, List<String> head, boolean responseToHead) throws IOException {
        boolean response = head.get(0).startsWith("HTTP/");
        if (responseToHead) {
            return new byte[0];
        }
        if (response) {
            int status = Integer.parseInt(head.get(0).split(" ")[1]);
            if (status < 200 || status == 204 || status == 304) {
                return new byte[0];
            }
        }
        String length = header(head, "content-length");
        if (length != null) {
            return in.readNBytes(Integer.parseInt(length));
        }
        if ("chunked".equalsIgnoreCase(header(head, "transfer-encoding"))) {
            ByteArrayOutputStream raw = new ByteArrayOutputStream();
            while (true) {
                String sizeLine = readLine(in);
                raw.write((sizeLine + "\r\n").getBytes(ISO_8859_1));
                int size = Integer.parseInt(sizeLine.split(";")[0].trim(), 16);
                if (size == 0) {
                    String trailer;
                    do {
                        trailer = readLine(in);
                        raw.write((trailer + "\r\n").getBytes(ISO_8859_1));
                    } while (!trailer.isEmpty());
                    return raw.toByteArray();
                }
                raw.write(in.readNBytes(size + 2));
            }
        }
        return response ? in.readAllBytes() : new byte[0];
    }

    private static String readLine(InputStream in) throws IOException {
        ByteArrayOutputStream line = new ByteArrayOutputStream();
        int b;
        while ((b = in.read()) >= 0 && b != '\n') {
            line.write(b);
        }
        if (b < 0) {
            throw new EOFException("connection closed inside a chunked body");
        }
        return line.toString(ISO_8859_1).replaceAll("\r$", "");
    }

    @Override
    public void close() throws IOException {
        closed = true;
        server.close();
        synchronized (sockets) {
            for (Socket s : sockets) {
                s.close();
            }
        }
    }
}
