import DepotCLI
import DepotCore
import Foundation
import Testing

/// TLS on the API (issue 13): a self-signed certificate made on first start
/// (key 0600, fingerprint logged), the CLI trusting it with --ca / $DEPOT_CA,
/// plain HTTP refused on the TLS listener, the pair kept across restarts.
@Suite(.serialized) struct TLSCLITests {
    @Test func theAPISpeaksTLSWithASelfSignedCertificateTheCLITrusts() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start(extra: ["--api-tls", "on"])
        #expect(daemon.url.hasPrefix("https://127.0.0.1:"), "\(daemon.url)")
        let cert = daemon.data + "/tls/cert.pem"
        let key = daemon.data + "/tls/key.pem"
        let mode = try FileManager.default.attributesOfItem(atPath: key)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        // The fingerprint in the log is the certificate's (as openssl computes it).
        let openssl = try Daemon.run("/usr/bin/openssl", ["x509", "-in", cert, "-noout", "-fingerprint", "-sha256"])
        let fingerprint = try #require(openssl.stdout.split(separator: "=").last).trimmingCharacters(
            in: .whitespacesAndNewlines)
        #expect(fingerprint.count == 95 && daemon.log.contains(fingerprint), "\(openssl.stdout)")

        var r = try daemon.depot(["pool", "list"], env: ["DEPOT_CA": cert])
        #expect(r.status == 0, "\(r.stderr)")
        r = try daemon.depot(["pool", "list", "--ca", cert])
        #expect(r.status == 0, "\(r.stderr)")
        // Without trusting it, the CLI refuses the certificate and says what to do.
        r = try daemon.depot(["pool", "list"])
        #expect(r.status != 0 && r.stderr.contains("--ca"), "\(r.stderr)")
        // curl agrees: trusted with --cacert, and plain HTTP gets no answer.
        let port = String(daemon.url.split(separator: ":").last ?? "")
        let health = try Daemon.run("/usr/bin/curl", ["-sf", "--cacert", cert, "https://127.0.0.1:\(port)/health"])
        #expect(health.status == 0 && health.stdout.contains("ok"), "\(health.stderr)")
        let plain = try Daemon.run(
            "/usr/bin/curl",
            ["-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(port)/health"])
        #expect(plain.stdout != "200", "plain HTTP on the TLS listener: \(plain.stdout)")

        // A restart keeps the pair.
        let before = try String(contentsOfFile: cert, encoding: .utf8)
        #expect(try await daemon.terminate() == 0)
        try await daemon.start(extra: ["--api-tls", "on"])
        #expect(try String(contentsOfFile: cert, encoding: .utf8) == before)
        #expect(try daemon.depot(["status"], env: ["DEPOT_CA": cert]).status == 0)
        #expect(try await daemon.terminate() == 0)

        // Half a pair is refused before anything starts.
        let half = try Daemon.run(
            try Binaries.path("depotd"), ["--data", daemon.data, "--api", "127.0.0.1:0", "--tls-cert", cert])
        #expect(half.status != 0 && half.stderr.contains("--tls-key"), "\(half.stderr)")
        // The operator's own pair (here the same files, given by name) is served.
        try await daemon.start(extra: ["--tls-cert", cert, "--tls-key", key])
        #expect(daemon.url.hasPrefix("https://"))
        #expect(try daemon.depot(["pool", "list"], env: ["DEPOT_CA": cert]).status == 0)
    }
}
