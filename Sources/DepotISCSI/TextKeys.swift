/// Text key=value pairs of Login and Text PDUs (RFC 7143 §6.1): UTF-8,
/// each pair terminated by NUL, order kept.
public enum TextKeys {
    public static func parse(_ data: [UInt8]) -> [(String, String)] {
        data.split(separator: 0, omittingEmptySubsequences: true).compactMap { pair in
            guard let eq = pair.firstIndex(of: UInt8(ascii: "=")) else { return nil }
            return (
                String(decoding: pair[pair.startIndex..<eq], as: UTF8.self),
                String(decoding: pair[(eq + 1)...], as: UTF8.self)
            )
        }
    }

    public static func encode(_ pairs: [(String, String)]) -> [UInt8] {
        pairs.flatMap { Array("\($0.0)=\($0.1)".utf8) + [0] }
    }
}
