// A JSSE client shaped like the Message Processor's backend call, for the failure-family captures
// (tests/fixtures/failure_captures.py): one connection per run, the JDK's PKIX trust manager and SunX509 key
// manager, the MP's knobs (protocols, cipher suites, SNI, endpoint identification) as arguments.
//
// Usage: java TlsClient ADDRESS PORT [key=value ...]
//   host=NAME       the name the client connects to: SNI and endpoint identification (default: ADDRESS)
//   trust=PEM       the CA certificates the client trusts (PEM file; required)
//   keystore=P12    a PKCS12 key entry to offer when the backend asks (password: changeit)
//   protocols=A,B   enabled protocols (e.g. TLSv1.2)
//   ciphers=A,B     enabled cipher suites
//   sni=off         send no server_name, like an Edge for Private Cloud MP with SNI disabled
//   identify=on     endpoint identification (HTTPS): the backend certificate must name `host`
//
// Prints one line: "OK <HTTP status line>" or "FAILED <exception>: <message>" (the text the MP would log), and
// exits 0 either way: a failing handshake is the point of most runs.

import java.io.FileInputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

public final class TlsClient {
    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: TlsClient ADDRESS PORT [host=NAME] [trust=PEM] [keystore=P12] "
                    + "[protocols=A,B] [ciphers=A,B] [sni=off] [identify=on]");
            System.exit(2);
        }
        Map<String, String> options = new HashMap<>();
        for (int i = 2; i < args.length; i++) {
            String[] pair = args[i].split("=", 2);
            options.put(pair[0], pair.length > 1 ? pair[1] : "");
        }
        String address = args[0];
        int port = Integer.parseInt(args[1]);
        String host = options.getOrDefault("host", address);
        try {
            System.out.println("OK " + call(address, port, host, options));
        } catch (Exception error) {
            System.out.println("FAILED " + error.getClass().getName() + ": " + error.getMessage());
        }
    }

    static String call(String address, int port, String host, Map<String, String> options) throws Exception {
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(keyManagers(options.get("keystore")), trustManagers(options.get("trust")), null);
        Socket plain = new Socket();
        plain.connect(new InetSocketAddress(address, port), 5000);
        plain.setSoTimeout(5000);
        try (SSLSocket socket = (SSLSocket) context.getSocketFactory().createSocket(plain, host, port, true)) {
            SSLParameters parameters = socket.getSSLParameters();
            if (options.containsKey("protocols")) {
                parameters.setProtocols(options.get("protocols").split(","));
            }
            if (options.containsKey("ciphers")) {
                parameters.setCipherSuites(options.get("ciphers").split(","));
            }
            if ("off".equals(options.get("sni"))) {
                parameters.setServerNames(List.of());
            } else if (!host.equals(address)) {
                parameters.setServerNames(List.of(new SNIHostName(host)));
            }
            if ("on".equals(options.get("identify"))) {
                parameters.setEndpointIdentificationAlgorithm("HTTPS");
            }
            socket.setSSLParameters(parameters);
            socket.startHandshake();
            OutputStream out = socket.getOutputStream();
            out.write(("GET / HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n")
                    .getBytes(StandardCharsets.US_ASCII));
            out.flush();
            InputStream in = socket.getInputStream();
            String answer = new String(in.readAllBytes(), StandardCharsets.ISO_8859_1);
            int end = answer.indexOf('\r');
            return end < 0 ? answer : answer.substring(0, end);
        }
    }

    static javax.net.ssl.KeyManager[] keyManagers(String path) throws Exception {
        if (path == null) {
            return null;
        }
        KeyStore store = KeyStore.getInstance("PKCS12");
        try (InputStream in = new FileInputStream(path)) {
            store.load(in, "changeit".toCharArray());
        }
        KeyManagerFactory factory = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        factory.init(store, "changeit".toCharArray());
        return factory.getKeyManagers();
    }

    static javax.net.ssl.TrustManager[] trustManagers(String path) throws Exception {
        KeyStore store = KeyStore.getInstance(KeyStore.getDefaultType());
        store.load(null, null);
        if (path != null) {
            Collection<? extends Certificate> certificates;
            try (InputStream in = new FileInputStream(path)) {
                certificates = CertificateFactory.getInstance("X.509").generateCertificates(in);
            }
            int index = 0;
            for (Certificate certificate : certificates) {
                store.setCertificateEntry("ca" + index++, certificate);
            }
        }
        TrustManagerFactory factory = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        factory.init(store);
        return factory.getTrustManagers();
    }
}
