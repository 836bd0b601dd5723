// The lab's Message Processor: an HTTP front end that calls the backend over two-way TLS (JSSE) per request,
// writes Apigee-like system.log lines (the playbook's handshakeFailed lines on failure), answers 503 with the
// fault Edge gives for the failure (docs/edge-fault-shapes.md), and appends one JSON line per request to a
// transactions file (the Edge emulator turns those into debug-session transactions).
//
// Usage: java MpSimulator ORG ENV API REV FRONT_ADDRESS FRONT_PORT MP_ADDRESS BACKEND_HOST BACKEND_PORT
//            BACKEND_SNI KEYSTORE PASSWORD KEY_ALIAS TRUSTSTORE_PEM LOG TRANSACTIONS PROTOCOLS CIPHERS COMMON_NAME
//
// The target's SSLInfo as the emulator serves it: TRUSTSTORE_PEM holds the certificates of the TrustStore,
// PROTOCOLS / CIPHERS are comma-separated (`-` = the JVM's defaults), COMMON_NAME makes the MP verify that the
// backend certificate holds that name (`-` = no name check), BACKEND_SNI is the server_name sent (`-` = none).
//
// Backend answers other than 2xx (nginx answers 400 when no client certificate came) are answered with the same
// 503 fault and an ERROR line naming the backend status: the lab's stand-in for the target error flow.

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayOutputStream;
import java.io.FileInputStream;
import java.io.FileWriter;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.Writer;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.security.SecureRandom;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.CertificateException;
import java.net.ConnectException;
import java.util.Collection;
import java.text.SimpleDateFormat;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

public final class MpSimulator {
    static final String FAULT = "{\"fault\":{\"faultstring\":\"The Service is temporarily unavailable\","
            + "\"detail\":{\"errorcode\":\"messaging.adaptors.http.flow.ServiceUnavailable\"}}}";
    static final String SSL_HANDSHAKE_FAILED = "messaging.adaptors.http.flow.SslHandshakeFailed";
    static final String THREAD = "NIOThread@0";

    final String org, env, api, rev, mpAddress, backendHost, backendSni, keyAlias, logPath, transactionsPath;
    final String[] protocols, ciphers;
    final String commonName;
    final int backendPort;
    final KeyStore keyStore, trustStore;
    final SSLContext context;
    final AtomicLong counter = new AtomicLong();
    final SecureRandom random = new SecureRandom();
    final String node;

    MpSimulator(String[] a) throws Exception {
        org = a[0];
        env = a[1];
        api = a[2];
        rev = a[3];
        mpAddress = a[6];
        backendHost = a[7];
        backendPort = Integer.parseInt(a[8]);
        backendSni = a[9];
        char[] password = a[11].toCharArray();
        keyAlias = a[12];
        logPath = a[14];
        transactionsPath = a[15];
        protocols = list(a[16]);
        ciphers = list(a[17]);
        commonName = a[18].equals("-") ? "" : a[18];
        keyStore = load(a[10], password);
        trustStore = loadPem(a[13]);
        // The default algorithm (SunX509) so JSSE's real issuer filtering decides what the MP sends.
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(keyStore, password);
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trustStore);
        context = SSLContext.getInstance("TLS");
        context.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);
        node = String.format("%08x", random.nextInt());
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 19) {
            System.err.println("usage: MpSimulator ORG ENV API REV FRONT_ADDRESS FRONT_PORT MP_ADDRESS BACKEND_HOST"
                    + " BACKEND_PORT BACKEND_SNI KEYSTORE PASSWORD KEY_ALIAS TRUSTSTORE_PEM LOG TRANSACTIONS"
                    + " PROTOCOLS CIPHERS COMMON_NAME");
            System.exit(2);
        }
        MpSimulator mp = new MpSimulator(args);
        HttpServer server = HttpServer.create(
                new InetSocketAddress(InetAddress.getByName(args[4]), Integer.parseInt(args[5])), 50);
        server.createContext("/", mp::handle);
        server.setExecutor(Executors.newFixedThreadPool(4));
        server.start();
        mp.log("INFO", "-", "MESSAGING.RUNTIME", "MessageProcessor.start() : message processor " + args[6]
                + " started, listening on " + args[4] + ":" + server.getAddress().getPort());
        System.out.println("listening " + args[4] + ":" + server.getAddress().getPort());
        System.out.flush();
    }

    static KeyStore load(String path, char[] password) throws Exception {
        KeyStore store = KeyStore.getInstance("PKCS12");
        try (InputStream in = new FileInputStream(path)) {
            store.load(in, password);
        }
        return store;
    }

    static String[] list(String arg) {
        return arg.equals("-") || arg.isEmpty() ? new String[0] : arg.split(",");
    }

    // An Edge truststore is a keystore of trusted certificates; the lab gets them as the emulator serves them.
    static KeyStore loadPem(String path) throws Exception {
        KeyStore store = KeyStore.getInstance("PKCS12");
        store.load(null, null);
        Collection<? extends Certificate> certs;
        try (InputStream in = new FileInputStream(path)) {
            certs = CertificateFactory.getInstance("X.509").generateCertificates(in);
        }
        int index = 0;
        for (Certificate cert : certs) {
            store.setCertificateEntry("trusted-" + index++, cert);
        }
        return store;
    }

    String newMessageId() {
        return String.format("rrt-%016x-%s-%d", random.nextLong(), node, counter.incrementAndGet());
    }

    void handle(HttpExchange exchange) throws IOException {
        long start = System.currentTimeMillis();
        String messageId = newMessageId();
        String method = exchange.getRequestMethod();
        String path = exchange.getRequestURI().toString();
        exchange.getRequestBody().readAllBytes();
        // Traffic of other API calls interleaves with ours in a real system.log.
        logOther("INFO", "HTTP.SERVICE", "ExecutionContext.dispatch() : request received GET /healthz");
        log("INFO", messageId, "MESSAGING.RUNTIME", "RequestContext.begin() : " + method + " " + path
                + " from " + exchange.getRemoteAddress().getAddress().getHostAddress());
        log("INFO", messageId, "HTTP.CLIENT", "HTTPClient.connect() : target " + backendHost + ":" + backendPort
                + " SSLInfo enabled=true clientAuthEnabled=true keyAlias=" + keyAlias);

        int status;
        String body;
        String errorCause = null;
        Outcome outcome = callBackend(messageId, start);
        if (outcome.error != null) {
            status = 503;
            body = outcome.fault != null ? outcome.fault : FAULT;
            errorCause = outcome.error;
        } else if (outcome.status < 200 || outcome.status > 299) {
            status = 503;
            body = FAULT;
            errorCause = "Backend answered HTTP " + outcome.status;
            log("ERROR", messageId, "ADAPTORS.HTTP.FLOW", "ResponseListener.onResponse() : target "
                    + backendHost + ":" + backendPort + " answered HTTP " + outcome.status + " ("
                    + summary(outcome.body) + ")");
        } else {
            status = outcome.status;
            body = outcome.body;
            log("INFO", messageId, "HTTP.CLIENT", "HTTPClient$Context.onResponse() : target answered HTTP "
                    + outcome.status);
        }
        logOther("INFO", "HTTP.SERVICE", "ExecutionContext.complete() : response sent 200");

        // Log and record before answering: whoever got the answer may read both right away.
        log("INFO", messageId, "MESSAGING.RUNTIME", "RequestContext.end() : status " + status + " in "
                + (System.currentTimeMillis() - start) + "ms");
        writeTransaction(start, messageId, exchange, method, path, status, errorCause, body);
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().add("X-Apigee.Message-ID", messageId);
        exchange.getResponseHeaders().add("Content-Type", status == 503 ? "application/json" : "text/plain");
        exchange.sendResponseHeaders(status, bytes.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(bytes);
        }
    }

    static final class Outcome {
        int status;
        String body = "";
        String error;
        String fault;
    }

    Outcome callBackend(String messageId, long start) {
        Outcome outcome = new Outcome();
        Socket plain = new Socket();
        String local = mpAddress + ":0";
        long connected = System.currentTimeMillis();
        try {
            // Bound to the MP's own address so captures can filter by host, as on a real MP.
            plain.bind(new InetSocketAddress(InetAddress.getByName(mpAddress), 0));
            plain.connect(new InetSocketAddress(InetAddress.getByName(backendHost), backendPort), 5000);
            plain.setSoTimeout(10_000);
            connected = System.currentTimeMillis();
            local = mpAddress + ":" + plain.getLocalPort();
            // With a CommonName the MP checks the backend certificate against it (the peer host JSSE verifies).
            String peer = commonName.isEmpty() ? backendHost : commonName;
            SSLSocket tls = (SSLSocket) context.getSocketFactory().createSocket(plain, peer, backendPort, true);
            tls.setUseClientMode(true);
            SSLParameters parameters = tls.getSSLParameters();
            boolean sni = !backendSni.isEmpty() && !backendSni.equals("-");
            // An empty list sends no server_name at all (JSSE would otherwise name a host-name peer).
            parameters.setServerNames(sni ? List.of(new SNIHostName(backendSni)) : List.of());
            if (protocols.length > 0) {
                parameters.setProtocols(protocols);
            }
            if (ciphers.length > 0) {
                parameters.setCipherSuites(ciphers);
            }
            if (!commonName.isEmpty()) {
                parameters.setEndpointIdentificationAlgorithm("HTTPS");
            }
            tls.setSSLParameters(parameters);
            // TLS 1.3: startHandshake() returns normally even when the backend rejects the empty certificate;
            // the alert then arrives on the first read below.
            tls.startHandshake();
            OutputStream out = tls.getOutputStream();
            String host = backendSni.isEmpty() || backendSni.equals("-") ? backendHost : backendSni;
            out.write(("GET / HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: Apigee-MP-Simulator\r\n"
                    + "X-Apigee.Message-ID: " + messageId + "\r\nConnection: close\r\n\r\n")
                    .getBytes(StandardCharsets.US_ASCII));
            out.flush();
            String response = new String(readAll(tls.getInputStream()), StandardCharsets.ISO_8859_1);
            tls.close();
            int headEnd = response.indexOf("\r\n\r\n");
            String[] statusLine = response.split("\r\n", 2)[0].split(" ");
            if (statusLine.length < 2 || !statusLine[0].startsWith("HTTP/")) {
                throw new IOException("malformed response from backend: " + firstLine(response));
            }
            outcome.status = Integer.parseInt(statusLine[1]);
            outcome.body = headEnd >= 0 ? response.substring(headEnd + 4) : "";
        } catch (Exception e) {
            outcome.error = e.getMessage() != null ? e.getMessage() : e.toString();
            Throwable rejected = certificateRejection(e);
            if (rejected != null) {
                // Edge's 503-sslhandshakefailed playbook: the MP's own check of the backend's certificate.
                outcome.fault = "{\"fault\":{\"faultstring\":" + json("SSL Handshake failed " + rejected)
                        + ",\"detail\":{\"errorcode\":\"" + SSL_HANDSHAKE_FAILED + "\"}}}";
            }
            if (e instanceof ConnectException) {
                logConnectFailure(messageId, e, local, connected);
            } else {
                logHandshakeFailure(messageId, e, local, connected);
            }
        } finally {
            try {
                plain.close();
            } catch (IOException ignored) {
                // nothing left to release
            }
        }
        return outcome;
    }

    // The trust manager's exception behind an SSLHandshakeException: the chain (PKIX), its dates, or the name.
    static Throwable certificateRejection(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof CertificateException) {
                return t;
            }
        }
        return null;
    }

    void logConnectFailure(String messageId, Exception e, String local, long connected) {
        long age = Math.max(1, System.currentTimeMillis() - connected);
        log("ERROR", messageId, "HTTP.CLIENT", "HTTPClient$Context.onConnectFailed() : ClientChannel[C:" + local
                + " Remote host:" + backendHost + ":" + backendPort + "] age=" + age + "ms connect failed, message: "
                + e.getMessage());
        log("ERROR", messageId, "ADAPTORS.HTTP.FLOW", "RequestWriteListener.onException() : RequestWriteListener"
                + ".onException(HTTPRequest@" + Integer.toHexString(System.identityHashCode(e)) + ")\n" + e);
    }

    static byte[] readAll(InputStream in) throws IOException {
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        byte[] chunk = new byte[8192];
        int n;
        while ((n = in.read(chunk)) >= 0) {
            buffer.write(chunk, 0, n);
        }
        return buffer.toByteArray();
    }

    void logHandshakeFailure(String messageId, Exception e, String local, long connected) {
        long age = Math.max(1, System.currentTimeMillis() - connected);
        int channel = 10000 + random.nextInt(89999);
        log("ERROR", messageId, "HTTP.CLIENT", "HTTPClient$Context.handshakeFailed() : SSLClientChannel[C:"
                + local + " Remote host:" + backendHost + ":" + backendPort + "]@" + channel
                + " useCount=1 bytesRead=0 bytesWritten=0 age=" + age + "ms lastIO=" + age
                + "ms handshake failed, message: " + e.getMessage());
        log("ERROR", messageId, "HTTP.CLIENT", "HTTPClient$Context.handshakeFailed() : SSLInfo: KeyStore:"
                + identity(keyStore) + " KeyAlias:" + keyAlias + " TrustStore:" + identity(trustStore));
        StringBuilder trace = new StringBuilder("RequestWriteListener.onException() : RequestWriteListener"
                + ".onException(HTTPRequest@" + Integer.toHexString(System.identityHashCode(e)) + ")\n" + e);
        StackTraceElement[] frames = e.getStackTrace();
        for (int i = 0; i < Math.min(6, frames.length); i++) {
            trace.append("\n\tat ").append(frames[i]).append(" ~[na:17]");
        }
        trace.append("\n\tat com.apigee.nio.handlers.NIOThread.run(NIOThread.java:59) [nio-1.0.0.jar:na]");
        log("ERROR", messageId, "ADAPTORS.HTTP.FLOW", trace.toString());
    }

    static String identity(Object o) {
        return o.getClass().getName() + "@" + Integer.toHexString(System.identityHashCode(o));
    }

    // nginx explains a 400 in the page title ("400 No required SSL certificate was sent").
    static String summary(String body) {
        int start = body.indexOf("<title>");
        int end = body.indexOf("</title>");
        if (start >= 0 && end > start) {
            return body.substring(start + 7, end).trim();
        }
        return firstLine(body);
    }

    static String firstLine(String s) {
        int nl = s.indexOf('\n');
        return (nl >= 0 ? s.substring(0, nl) : s).trim();
    }

    void logOther(String level, String category, String text) {
        String otherId = String.format("rrt-%016x-%s-%d", random.nextLong(), node, 900000 + random.nextInt(99999));
        writeLog(String.format("org:%s env:%s api:%s rev:%s messageid:%s %s %s %s - %s", org, env, "healthcheck",
                "1", otherId, THREAD, level, category, text));
    }

    void log(String level, String messageId, String category, String text) {
        writeLog(String.format("org:%s env:%s api:%s rev:%s messageid:%s %s %s %s - %s", org, env, api, rev,
                messageId, THREAD, level, category, text));
    }

    synchronized void writeLog(String line) {
        String time = new SimpleDateFormat("yyyy-MM-dd HH:mm:ss,SSS").format(new Date());
        try (Writer w = new FileWriter(logPath, StandardCharsets.UTF_8, true)) {
            w.write(time + " " + line + "\n");
        } catch (IOException e) {
            System.err.println("cannot write " + logPath + ": " + e);
        }
    }

    synchronized void writeTransaction(long time, String messageId, HttpExchange exchange, String method,
            String path, int status, String errorCause, String body) {
        Map<String, String> headers = new TreeMap<>();
        for (Map.Entry<String, List<String>> h : exchange.getRequestHeaders().entrySet()) {
            headers.put(h.getKey(), String.join(",", h.getValue()));
        }
        List<String> headerFields = new ArrayList<>();
        for (Map.Entry<String, String> h : headers.entrySet()) {
            headerFields.add(json(h.getKey()) + ": " + json(h.getValue()));
        }
        String line = "{\"time\": " + time
                + ", \"message_id\": " + json(messageId)
                + ", \"org\": " + json(org) + ", \"env\": " + json(env) + ", \"api\": " + json(api)
                + ", \"rev\": " + json(rev) + ", \"mp\": " + json(mpAddress)
                + ", \"method\": " + json(method) + ", \"path\": " + json(path)
                + ", \"request_headers\": {" + String.join(", ", headerFields) + "}"
                + ", \"status\": " + status
                + ", \"error_cause\": " + (errorCause == null ? "null" : json(errorCause))
                + ", \"response_body\": " + json(body)
                + ", \"backend\": " + json(backendHost + ":" + backendPort) + "}\n";
        try (Writer w = new FileWriter(transactionsPath, StandardCharsets.UTF_8, true)) {
            w.write(line);
        } catch (IOException e) {
            System.err.println("cannot write " + transactionsPath + ": " + e);
        }
    }

    static String json(String s) {
        StringBuilder out = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"': out.append("\\\""); break;
                case '\\': out.append("\\\\"); break;
                case '\n': out.append("\\n"); break;
                case '\r': out.append("\\r"); break;
                case '\t': out.append("\\t"); break;
                default:
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
            }
        }
        return out.append('"').toString();
    }
}
