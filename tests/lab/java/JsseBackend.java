// The lab's Java backend: a two-way TLS server (JSSE, client certificate required) answering HTTP/1.1 200.
//
// Usage: java JsseBackend ADDRESS PORT KEYSTORE.p12 TRUSTSTORE.p12 PASSWORD TLSv1.2|TLSv1.3
//
// Each connection is accepted as a plain socket and layered with an SSLSocket that does not own it
// (autoClose=false). JSSE closes its own socket right after sending a fatal alert; the JDK client, still writing
// its ClientKeyExchange/Finished flight in TLS 1.2, then often reports "Broken pipe" instead of the alert
// (tls-observations.md 3.2). Owning the plain socket lets us keep it open ~300 ms and drain what the client sent,
// so the client reads "Received fatal alert: bad_certificate" like it does against a real backend.

import java.io.FileInputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.SSLSocketFactory;
import javax.net.ssl.TrustManagerFactory;

public final class JsseBackend {
    private static final long LINGER_AFTER_FAILURE_MS = 300;

    public static void main(String[] args) throws Exception {
        if (args.length != 6) {
            System.err.println("usage: JsseBackend ADDRESS PORT KEYSTORE TRUSTSTORE PASSWORD PROTOCOL");
            System.exit(2);
        }
        String address = args[0];
        int port = Integer.parseInt(args[1]);
        char[] password = args[4].toCharArray();
        String protocol = args[5];

        KeyStore keyStore = load(args[2], password);
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(keyStore, password);
        KeyStore trustStore = load(args[3], password);
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trustStore);
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);
        SSLSocketFactory factory = context.getSocketFactory();

        ServerSocket server = new ServerSocket();
        server.setReuseAddress(true);
        server.bind(new InetSocketAddress(InetAddress.getByName(address), port), 50);
        System.out.println("listening " + address + ":" + server.getLocalPort() + " " + protocol);
        System.out.flush();

        ExecutorService pool = Executors.newCachedThreadPool();
        while (true) {
            Socket plain = server.accept();
            pool.execute(() -> serve(factory, plain, protocol));
        }
    }

    private static KeyStore load(String path, char[] password) throws Exception {
        KeyStore store = KeyStore.getInstance("PKCS12");
        try (InputStream in = new FileInputStream(path)) {
            store.load(in, password);
        }
        return store;
    }

    private static void serve(SSLSocketFactory factory, Socket plain, String protocol) {
        String peer = plain.getRemoteSocketAddress().toString();
        try {
            plain.setSoTimeout(10_000);
            SSLSocket tls = (SSLSocket) factory.createSocket(plain, null, plain.getPort(), false);
            tls.setUseClientMode(false);
            tls.setNeedClientAuth(true);
            tls.setEnabledProtocols(new String[] {protocol});
            try {
                tls.startHandshake();
                readRequestHead(tls.getInputStream());
                // In TLS 1.3 the server only checks the client's Certificate once it reads past the handshake,
                // so a failure may surface here and not in startHandshake().
                byte[] body = ("ok from jsse backend, client " + tls.getSession().getPeerPrincipal().getName()
                        + "\n").getBytes(StandardCharsets.UTF_8);
                OutputStream out = tls.getOutputStream();
                out.write(("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + body.length
                        + "\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
                out.write(body);
                out.flush();
                System.out.println("served " + peer + " " + tls.getSession().getProtocol());
                tls.close();
            } catch (Exception failure) {
                System.out.println("handshake failed " + peer + ": " + failure);
                lingerAndDrain(plain);
            }
        } catch (Exception e) {
            System.out.println("connection error " + peer + ": " + e);
        } finally {
            System.out.flush();
            try {
                plain.close();
            } catch (Exception ignored) {
                // already closed by the peer
            }
        }
    }

    private static void readRequestHead(InputStream in) throws Exception {
        int matched = 0;
        byte[] end = {'\r', '\n', '\r', '\n'};
        while (matched < end.length) {
            int b = in.read();
            if (b < 0) {
                return;
            }
            matched = (b == end[matched]) ? matched + 1 : (b == '\r' ? 1 : 0);
        }
    }

    // Reading what the client still sends keeps the kernel from answering it with a RST that would beat the alert.
    private static void lingerAndDrain(Socket plain) {
        long deadline = System.currentTimeMillis() + LINGER_AFTER_FAILURE_MS;
        byte[] buffer = new byte[4096];
        try {
            InputStream in = plain.getInputStream();
            while (true) {
                long left = deadline - System.currentTimeMillis();
                if (left <= 0) {
                    break;
                }
                plain.setSoTimeout((int) left);
                if (in.read(buffer) < 0) {
                    break;
                }
            }
        } catch (Exception ignored) {
            // timeout or reset: either way the linger is over
        }
    }
}
