import Crypto

/// CHAP credentials of a target (RFC 7143 §12.1.3). The initiator proves it
/// knows `secret`; with mutual CHAP the target proves it knows `mutualSecret`.
public struct CHAPCredentials: Sendable, Equatable {
    public var user: String
    public var secret: String
    public var mutualUser: String?
    public var mutualSecret: String?

    public init(user: String, secret: String, mutualUser: String? = nil, mutualSecret: String? = nil) {
        self.user = user
        self.secret = secret
        self.mutualUser = mutualUser
        self.mutualSecret = mutualSecret
    }
}

enum CHAP {
    /// The longest CHAP_C or CHAP_N accepted from an initiator, in bytes
    /// (binary values are sent as hex or base64, so texts are at most about twice it).
    static let maxValueBytes = 1024

    /// MD5(identifier || secret || challenge) (RFC 1994 §4.1; CHAP_A=5), by swift-crypto.
    static func response(id: UInt8, secret: String, challenge: [UInt8]) -> [UInt8] {
        Array(Insecure.MD5.hash(data: [id] + Array(secret.utf8) + challenge))
    }

    /// `0x` hex or `0b` base64 (RFC 7143 §6.1: binary-value).
    static func decode(_ text: String) -> [UInt8]? {
        if text.hasPrefix("0x") || text.hasPrefix("0X") {
            let digits = Array(text.dropFirst(2))
            guard digits.count % 2 == 0, !digits.isEmpty else { return nil }
            var out: [UInt8] = []
            var i = 0
            while i < digits.count {
                guard let byte = UInt8(String(digits[i..<i + 2]), radix: 16) else { return nil }
                out.append(byte)
                i += 2
            }
            return out
        }
        if text.hasPrefix("0b") || text.hasPrefix("0B") {
            return base64Decode(String(text.dropFirst(2)))
        }
        return nil
    }

    static func hex(_ bytes: [UInt8]) -> String {
        "0x" + bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// Equal without an early exit, so timing does not reveal how much matched.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for i in 0..<max(a.count, b.count) { diff |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0) }
        return diff == 0
    }

    static func base64Decode(_ text: String) -> [UInt8]? {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var values: [UInt8: UInt8] = [:]
        for (i, c) in alphabet.enumerated() { values[c] = UInt8(i) }
        var bits: UInt32 = 0
        var count = 0
        var out: [UInt8] = []
        for c in text.utf8 where c != UInt8(ascii: "=") {
            guard let v = values[c] else { return nil }
            bits = bits << 6 | UInt32(v)
            count += 6
            if count >= 8 {
                count -= 8
                out.append(UInt8(truncatingIfNeeded: bits >> UInt32(count)))
            }
        }
        return out
    }
}

/// CHAP's computation for initiators outside this module (the test and
/// benchmark initiators): the same code the target checks with.
public enum CHAPResponse {
    public static func md5(id: UInt8, secret: String, challenge: [UInt8]) -> [UInt8] {
        CHAP.response(id: id, secret: secret, challenge: challenge)
    }
    public static func decode(_ text: String) -> [UInt8]? { CHAP.decode(text) }
    public static func hex(_ bytes: [UInt8]) -> String { CHAP.hex(bytes) }
}
