import Crypto
import DepotCore
import Foundation
import NIOSSL
import SwiftASN1
import X509

#if canImport(Glibc)
    import Glibc
#endif

/// TLS for the REST API (swift-nio-ssl): the operator's certificate and key,
/// or a self-signed pair made on first start in `DATA/tls/` (key 0600),
/// whose SHA-256 fingerprint is logged so a client can pin or trust it.
enum APITLS {
    struct Material {
        let certificatePath: String
        let keyPath: String
        /// SHA-256 of the leaf certificate's DER, as `AB:CD:…`.
        let fingerprint: String
        let configuration: TLSConfiguration
    }

    /// Loads the given pair, or the self-signed one in `directory` (made when absent).
    static func material(certificate: String?, key: String?, directory: String, hosts: [String]) throws -> Material {
        let certPath: String
        let keyPath: String
        if let certificate, let key {
            (certPath, keyPath) = (certificate, key)
        } else {
            (certPath, keyPath) = (directory + "/cert.pem", directory + "/key.pem")
            if !FileManager.default.fileExists(atPath: certPath) || !FileManager.default.fileExists(atPath: keyPath) {
                try makeSelfSigned(certificate: certPath, key: keyPath, hosts: hosts)
            }
        }
        let chain: [NIOSSLCertificate]
        let privateKey: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certPath)
            privateKey = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        } catch {
            throw DepotError.invalidArgument(
                "cannot load the API's TLS certificate \(certPath) and key \(keyPath): \(error)")
        }
        guard let leaf = chain.first else {
            throw DepotError.invalidArgument("no certificate in \(certPath)")
        }
        let der = Data(try leaf.toDERBytes())
        let fingerprint = SHA256.hash(data: der).map { String(format: "%02X", $0) }.joined(separator: ":")
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
        return Material(
            certificatePath: certPath, keyPath: keyPath, fingerprint: fingerprint, configuration: configuration)
    }

    /// A self-signed P-256 certificate for `hosts` (names and addresses), valid ten years.
    static func makeSelfSigned(certificate: String, key: String, hosts: [String]) throws {
        let fm = FileManager.default
        try fm.createDirectory(
            atPath: (certificate as NSString).deletingLastPathComponent, withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700])
        let privateKey = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            OrganizationName("Depot")
            CommonName("depotd")
        }
        var names: [GeneralName] = []
        // A wildcard listener is reached by the machine's own addresses: name them all.
        let wildcard = hosts.contains("0.0.0.0") || hosts.contains("::")
        let all =
            hosts.filter { $0 != "0.0.0.0" && $0 != "::" } + ["localhost", "127.0.0.1", "::1"]
            + (wildcard ? interfaceAddresses() : [])
        for host in Set(all).sorted() {
            if let bytes = addressBytes(host) {
                names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(bytes))))
            } else if !host.isEmpty {
                names.append(.dnsName(host))
            }
        }
        let now = Date()
        let cert = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(privateKey.publicKey),
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(10 * 366 * 86_400),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(digitalSignature: true, keyCertSign: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(names)
            },
            issuerPrivateKey: .init(privateKey))
        try DataDirectory.writeDurably(privateKey.pemRepresentation + "\n", to: key, mode: 0o600)
        try DataDirectory.writeDurably(try cert.serializeAsPEM().pemString + "\n", to: certificate, mode: 0o644)
    }

    /// The machine's IPv4 and IPv6 interface addresses (getifaddrs(3)).
    static func interfaceAddresses() -> [String] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return [] }
        defer { freeifaddrs(list) }
        var found: [String] = []
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let address = entry.pointee.ifa_addr else { continue }
            let family = Int32(address.pointee.sa_family)
            guard family == AF_INET || family == AF_INET6 else { continue }
            var text = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            let length = socklen_t(family == AF_INET ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size)
            guard getnameinfo(address, length, &text, socklen_t(text.count), nil, 0, NI_NUMERICHOST) == 0 else {
                continue
            }
            let name = String(cString: text)
            // Link-local IPv6 addresses carry a zone (fe80::1%eth0): not a certificate name.
            if !name.contains("%") { found.append(name) }
        }
        return found
    }

    static func addressBytes(_ host: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

}
